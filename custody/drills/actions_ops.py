"""Drill actions around the vaults: the clock, RPC faults, lost and new keys, and assertions."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.drills.actions_vault import VAULT, scheduled_op
from custody.drills.context import DrillContext
from custody.drills.model import BalanceCheck, StateCheck
from custody.drills.spec import Param, action
from custody.exceptions import DrillError
from custody.policy.onchain import guard_paused, installed_guard
from custody.policy.template import parse_duration
from custody.signers.local import LocalKeySigner
from custody.types import format_amount
from custody.vault import exit as vault_exit
from custody.vault import proposals

FAULT_MODES = ("refuse", "timeout", "error", "drop")


@action(
    "advance_time",
    "move the chain clock forward (a duration, or until an exit / timelock is ready)",
    Param("duration", "duration"),
    Param("until", "text", choices=("exit_ready", "timelock_ready")),
    Param("vault", "vault", help="with until"),
    one_of=("duration", "until"),
)
def advance_time(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    chain = ctx.session.chain
    now = chain.latest_timestamp()
    if "duration" in args:
        target = now + parse_duration(str(args["duration"]))
    else:
        if "vault" not in args:
            raise DrillError(f"advance_time until {args['until']} needs the vault")
        vault = ctx.vault(args["vault"])
        if args["until"] == "exit_ready":
            ready = vault_exit.status(ctx.session, vault.id).ready_at
            if ready is None:
                raise DrillError(f"vault {vault.name} has no pending exit to wait for")
        else:
            ready = scheduled_op(ctx, vault.id).ready_at or now
        target = ready
    target = max(target, now + 1)
    chain.set_next_timestamp(target)
    chain.mine()
    return {"from": now, "to": chain.latest_timestamp(), "advanced_s": chain.latest_timestamp() - now}


@action(
    "rpc_fault",
    "make the RPC misbehave for the next calls (refuse, timeout, error, drop)",
    Param("mode", "text", required=True, choices=FAULT_MODES),
    Param("method", "text", help="JSON-RPC method, or * (default) for every call"),
    Param("for", "text", help="how many matching calls (default 1), or forever (until rpc_heal)"),
    Param("after", "int", help="let this many matching calls through first"),
)
def rpc_fault(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    if ctx.proxy is None:
        raise DrillError("this drill runs without the fault proxy; rpc_fault is unavailable")
    raw = str(args.get("for", "1"))
    if raw != "forever" and not raw.isdigit():
        raise DrillError(f"rpc_fault `for` must be a number of calls or `forever`, got {raw!r}")
    count = None if raw == "forever" else int(raw)
    hang = ctx.session.chain.policy.timeout + 1.0
    method = str(args.get("method", "*"))
    ctx.proxy.inject(str(args["mode"]), method=method, count=count, skip=int(args.get("after", 0)), hang=hang)
    return {
        "mode": args["mode"],
        "method": method,
        "calls": raw,
        "client_timeout_s": ctx.session.chain.policy.timeout,
        "client_retries": ctx.session.chain.policy.retries,
    }


@action("rpc_heal", "the RPC behaves again (every programmed fault is removed)")
def rpc_heal(ctx: DrillContext, _args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    if ctx.proxy is None:
        raise DrillError("this drill runs without the fault proxy; rpc_heal is unavailable")
    injected = len(ctx.proxy.injected)
    ctx.proxy.clear()
    return {"faults_injected_so_far": injected}


@action("lose_keys", "declare the actors' keys lost: every later use of them fails", actor="signers")
def lose_keys(ctx: DrillContext, _args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    lost = [ctx.signer_address(uri) for uri in actors]
    ctx.lost.update(lost)
    return {"lost": lost}


@action(
    "generate_key",
    "generate a fresh key (in memory, for this drill) usable as actor key:NAME",
    Param("as", "alias", required=True, defines="key"),
)
def generate_key(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    alias = str(args["as"])
    signer = LocalKeySigner(secrets.token_bytes(32), uri=f"key:{alias}")
    ctx.keys[alias] = signer
    return {"key": f"key:{alias}", "address": signer.address}


def _implied_balance(args: Mapping[str, Any], line: int) -> dict[str, Any]:
    op = next(o for o in ("equals", "at_least", "at_most") if o in args)
    return {"balances": (BalanceCheck(str(args["of"]), str(args.get("asset", "ETH")), op, str(args[op]), line),)}


@action(
    "assert_balance",
    "check a balance (vault alias, signer or address)",
    Param("of", "address", required=True),
    Param("asset", "asset"),
    Param("equals", "amount"),
    Param("at_least", "amount"),
    Param("at_most", "amount"),
    implied=_implied_balance,
    one_of=("equals", "at_least", "at_most"),
)
def assert_balance(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    asset = ctx.asset(args.get("asset", "ETH"))
    return {
        "of": ctx.address(args["of"]),
        "asset": asset.symbol,
        "balance": format_amount(ctx.balance(ctx.address(args["of"]), asset), asset.decimals),
    }


STATE_ARGS = ("paused", "threshold", "owners_include", "owners_exclude", "exit_pending")


def _implied_state(args: Mapping[str, Any], line: int) -> dict[str, Any]:
    checks = tuple(
        (k, args[k] if k not in ("paused", "exit_pending") else str(args[k]).lower()) for k in STATE_ARGS if k in args
    )
    return {"state": StateCheck(str(args["vault"]), checks, line)}


def vault_state(ctx: DrillContext, alias: str) -> dict[str, Any]:
    """What state checks compare against: owners, threshold, nonce, paused, exit status."""
    session = ctx.session
    vault = ctx.vault(alias)
    owners, threshold = proposals.owners_and_threshold(session, vault.safe)
    guard = installed_guard(session, vault.safe)
    paused = None
    if guard is not None:
        try:
            paused = guard_paused(session, guard)
        except (ContractLogicError, BadFunctionCallOutput):  # a foreign guard (a broken one) has no info()
            paused = None
    pending = vault_exit.status(session, vault.id).pending if vault.exit_module else None
    return {
        "owners": list(owners),
        "threshold": threshold,
        "nonce": proposals.safe_nonce(session, vault.safe),
        "guard": guard,
        "paused": paused,
        "exit_pending": pending,
    }


@action(
    "assert_state",
    "check a vault's live state (paused, threshold, owners, pending exit)",
    VAULT,
    Param("paused", "bool"),
    Param("threshold", "int"),
    Param("owners_include", "address"),
    Param("owners_exclude", "address"),
    Param("exit_pending", "bool"),
    implied=_implied_state,
)
def assert_state(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    return vault_state(ctx, str(args["vault"]))


def _implied_isolation(_args: Mapping[str, Any], _line: int) -> dict[str, Any]:
    return {"data": (("shared_components", "0"),)}


@action(
    "assert_isolation",
    "check that vaults share no contract (Safe, timelock, guard, exit module)",
    Param("vaults", "vaults", required=True),
    implied=_implied_isolation,
)
def assert_isolation(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    owners: dict[str, list[str]] = {}
    for alias in args["vaults"]:
        vault = ctx.vault(alias)
        guard = installed_guard(ctx.session, vault.safe)
        for part in (vault.safe, vault.timelock, guard, vault.exit_module):
            if part is not None:
                owners.setdefault(part, []).append(alias)
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    return {"components": len(owners), "shared_components": len(shared), "shared": shared}


def _implied_broadcasts(args: Mapping[str, Any], _line: int) -> dict[str, Any]:
    return {"duplicate_nonces": int(args.get("duplicate_nonces", 0))}


@action(
    "assert_broadcasts",
    "check what reached the node: no two different transactions with one nonce",
    Param("duplicate_nonces", "int"),
    implied=_implied_broadcasts,
)
def assert_broadcasts(ctx: DrillContext, _args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    if ctx.proxy is None:
        raise DrillError("this drill runs without the fault proxy; broadcasts are not observed")
    return {
        "broadcasts": len(ctx.proxy.broadcasts),
        "distinct": len({b.tx_hash for b in ctx.proxy.broadcasts}),
        "duplicate_nonces": len(ctx.proxy.duplicate_nonces()),
    }
