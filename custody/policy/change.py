"""Policy changes: what a new template changes on-chain, and scheduling it through the vault's timelock.

``plan_change`` compares a template with the vault's live configuration (owners, threshold, timelock
delay, the guard's enforced config) and lists the differences plus the exact calls the timelock will
make. ``apply_change`` deploys the new guard (if the enforced policy changes; it carries the old
guard's rolling windows over) and creates the Safe proposal that schedules the batch. After the
owners execute it and the delay passes, ``custody tx execute`` completes it; until then the Safe can
cancel it (``cancel_change``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector_of

from custody.chain.transactions import Receipt
from custody.contracts.deploy import codehash, read_many
from custody.exceptions import ProposalError, TemplateError
from custody.policy.compiled import KIND_NAMES, GuardAsset, GuardConfig, compile_exit, compile_policy
from custody.policy.model import DAYS
from custody.policy.onchain import _symbols, installed_guard, read_guard
from custody.policy.template import Policy, load_policy, load_policy_text
from custody.session import Session
from custody.store import remember_template, vaults
from custody.types import ZERO_ADDRESS, Address, format_amount
from custody.vault import proposals, timelock_ops
from custody.vault.service import VaultRecord, get_vault

SENTINEL = Address("0x0000000000000000000000000000000000000001")


@dataclass(frozen=True)
class Change:
    area: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"area": self.area, "description": self.description}


@dataclass(frozen=True)
class ChangePlan:
    vault: VaultRecord
    policy: Policy
    config: GuardConfig
    changes: tuple[Change, ...]
    calls: tuple[
        timelock_ops.ScheduledCall, ...
    ]  # without the setGuard call (its address is known only after deploying)
    needs_guard: bool
    current_guard: Address | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.vault.name,
            "template": self.policy.source_path,
            "changes": [c.as_dict() for c in self.changes],
            "calls": [c.as_dict() for c in self.calls],
            "needs_new_guard": self.needs_guard,
            "new_policy_hash": "0x" + self.config.policy_hash.hex(),
        }


def _module_call(safe: str, inner: bytes, description: str) -> timelock_ops.ScheduledCall:
    payload = selector_of("execTransactionFromModule(address,uint256,bytes,uint8)") + encode(
        ["address", "uint256", "bytes", "uint8"], [safe, 0, inner, 0]
    )
    return timelock_ops.ScheduledCall(Address(safe), 0, payload, description)


def _owner_calls(
    safe: str, current: Sequence[str], threshold: int, wanted: Sequence[str], new_threshold: int
) -> list[timelock_ops.ScheduledCall]:
    """Safe owner-management calls turning (current, threshold) into (wanted, new_threshold)."""
    owners = list(current)
    calls: list[timelock_ops.ScheduledCall] = []

    def prev(owner: str) -> str:
        i = owners.index(owner)
        return SENTINEL if i == 0 else owners[i - 1]

    to_remove = [o for o in owners if o not in wanted]
    to_add = [o for o in wanted if o not in owners]
    for old, new in zip(to_remove, to_add):
        inner = selector_of("swapOwner(address,address,address)") + encode(["address"] * 3, [prev(old), old, new])
        calls.append(_module_call(safe, inner, f"swap owner {old} for {new}"))
        owners[owners.index(old)] = new
    for new in to_add[len(to_remove) :]:
        inner = selector_of("addOwnerWithThreshold(address,uint256)") + encode(["address", "uint256"], [new, threshold])
        calls.append(_module_call(safe, inner, f"add owner {new}"))
        owners.insert(0, new)
    for old in to_remove[len(to_add) :]:
        threshold = min(threshold, len(owners) - 1)
        inner = selector_of("removeOwner(address,address,uint256)") + encode(
            ["address"] * 2 + ["uint256"], [prev(old), old, threshold]
        )
        calls.append(_module_call(safe, inner, f"remove owner {old}"))
        owners.remove(old)
    if threshold != new_threshold:
        inner = selector_of("changeThreshold(uint256)") + encode(["uint256"], [new_threshold])
        calls.append(_module_call(safe, inner, f"change threshold {threshold} -> {new_threshold}"))
    return calls


def _hm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _window(w: tuple[int, int]) -> str:
    day, start = divmod(w[0], 86400)
    return f"{DAYS[day]} {_hm(start)}-{_hm(w[1] - day * 86400)} UTC"


def _config_changes(old: GuardConfig, new: GuardConfig, symbols: dict[str, tuple[str, int]]) -> list[Change]:
    def label(token: str) -> tuple[str, int]:
        return ("ETH", 18) if token == ZERO_ADDRESS else symbols.get(token, (token, 0))

    changes: list[Change] = []
    old_assets = {a.token: (i, a) for i, a in enumerate(old.assets)}
    new_assets = {a.token: (i, a) for i, a in enumerate(new.assets)}
    for token, (_i, asset) in new_assets.items():
        symbol, decimals = label(token)
        if token not in old_assets:
            changes.append(
                Change(
                    "assets",
                    f"add asset {symbol}: per-tx {format_amount(asset.per_tx_limit, decimals)}, daily {format_amount(asset.daily_limit, decimals)}",
                )
            )
            continue
        before = old_assets[token][1]
        for name, a, b in (
            ("per-tx limit", before.per_tx_limit, asset.per_tx_limit),
            ("daily limit", before.daily_limit, asset.daily_limit),
        ):
            if a != b:
                changes.append(
                    Change(
                        f"asset.{symbol}",
                        f"{symbol} {name} {format_amount(a, decimals)} -> {format_amount(b, decimals)}",
                    )
                )
    for token in old_assets.keys() - new_assets.keys():
        changes.append(
            Change("assets", f"remove asset {label(token)[0]} (no longer transferable without the timelock)")
        )

    def allowed(cfg: GuardConfig, assets: dict[Address, tuple[int, GuardAsset]]) -> dict[Address, set[str]]:
        result: dict[Address, set[str]] = {}
        for token, (i, _a) in assets.items():
            if cfg.unrestricted_mask >> i & 1:
                result[token] = {"*"}
            else:
                result[token] = {d.account for d in cfg.destinations if d.asset_mask >> i & 1}
        return result

    allowed_before, allowed_after = allowed(old, old_assets), allowed(new, new_assets)
    for token in sorted(allowed_before.keys() & allowed_after.keys()):
        symbol = label(token)[0]
        for dest in sorted(allowed_after[token] - allowed_before[token]):
            changes.append(
                Change(f"asset.{symbol}.allowlist", f"allow {symbol} to {'any destination' if dest == '*' else dest}")
            )
        for dest in sorted(allowed_before[token] - allowed_after[token]):
            changes.append(
                Change(
                    f"asset.{symbol}.allowlist",
                    f"stop allowing {symbol} to {'any destination' if dest == '*' else dest}",
                )
            )
    for w in sorted(set(new.freeze_windows) - set(old.freeze_windows)):
        changes.append(Change("freeze_windows", f"add freeze window {_window(w)}"))
    for w in sorted(set(old.freeze_windows) - set(new.freeze_windows)):
        changes.append(Change("freeze_windows", f"remove freeze window {_window(w)}"))
    if (old.allowed_start, old.allowed_end) != (new.allowed_start, new.allowed_end):

        def fmt(start: int, end: int) -> str:
            return "any time" if end == 0 else f"{_hm(start)}-{_hm(end)} UTC"

        changes.append(
            Change(
                "allowed_hours",
                f"allowed hours {fmt(old.allowed_start, old.allowed_end)} -> {fmt(new.allowed_start, new.allowed_end)}",
            )
        )
    for bit, name in KIND_NAMES.items():
        if bool(old.timelock_kinds & bit) != bool(new.timelock_kinds & bit):
            verb = "allow" if new.timelock_kinds & bit else "stop allowing"
            changes.append(Change("timelock.operations", f"{verb} scheduling '{name}' through the timelock"))
    for target, selector in sorted(set(new.calls) - set(old.calls)):
        changes.append(Change("contract_calls", f"allow calling 0x{selector.hex()} on {target}"))
    for target, selector in sorted(set(old.calls) - set(new.calls)):
        changes.append(Change("contract_calls", f"stop allowing 0x{selector.hex()} on {target}"))
    if old.template_hash != new.template_hash:
        changes.append(
            Change("template", f"template hash 0x{old.template_hash.hex()[:16]}… -> 0x{new.template_hash.hex()[:16]}…")
        )
    return changes


def _exit_calls(
    session: Session, vault: VaultRecord, policy: Policy, changes: list[Change]
) -> list[timelock_ops.ScheduledCall]:
    """Timelock calls that bring the vault's ExitModule in line with the template's ``exit:``."""

    wanted = compile_exit(policy)
    if vault.exit_module is None:
        if wanted is not None:
            changes.append(
                Change("exit", "the template adds an exit module; create a new vault for it (not supported in place)")
            )
        return []
    module = session.contract("ExitModule", vault.exit_module)
    current = session.chain.call(module.functions.config().call)
    if wanted is None:
        changes.append(Change("exit", "the template drops `exit:`; the existing exit module stays configured as it is"))
        return []

    def normalise(cfg: Sequence[Any]) -> tuple[list[str], list[str], int, int, bool, list[str]]:
        return (
            sorted(a.lower() for a in cfg[0]),
            sorted(a.lower() for a in cfg[1]),
            int(cfg[2]),
            int(cfg[3]),
            bool(cfg[4]),
            sorted(a.lower() for a in cfg[5]),
        )

    if normalise(current) == normalise(wanted):
        return []
    old, new = normalise(current), normalise(wanted)
    labels = ("custodians", "initiators", "quorum", "escrow delay", "owners can cancel", "swept tokens")
    for label, a, b in zip(labels, old, new):
        if a != b:
            changes.append(Change("exit", f"exit {label}: {a} -> {b}"))
    payload = bytes.fromhex(module.encode_abi("configure", [wanted])[2:])
    return [timelock_ops.ScheduledCall(vault.exit_module, 0, payload, "reconfigure the exit module")]


def plan_change(session: Session, vault_ref: str | int, template: str | Path) -> ChangePlan:
    vault = get_vault(session, vault_ref)
    policy = load_policy(template)
    config = compile_policy(policy)
    safe = session.contract("SafeL2", vault.safe)
    lock = session.contract("VaultTimelock", vault.timelock)
    owners, threshold, delay = read_many(
        session.chain, [safe.functions.getOwners(), safe.functions.getThreshold(), lock.functions.getMinDelay()]
    )
    owners = [Address(o) for o in owners]
    changes: list[Change] = []
    calls = _owner_calls(vault.safe, owners, int(threshold), policy.owner_addresses, policy.threshold)
    for o in policy.owner_addresses:
        if o not in owners:
            changes.append(Change("owners", f"add owner {o}"))
    for o in owners:
        if o not in policy.owner_addresses:
            changes.append(Change("owners", f"remove owner {o}"))
    if int(threshold) != policy.threshold:
        changes.append(Change("threshold", f"threshold {threshold} -> {policy.threshold}"))
    guard = installed_guard(session, vault.safe)
    needs_guard = True
    if guard is not None:
        info = read_guard(session, guard)
        needs_guard = info.policy_hash != config.policy_hash
        if needs_guard:
            changes += _config_changes(info.config, config, _symbols(session, info))
    else:
        changes.append(Change("guard", "install a CustodyGuard (the vault has none)"))
    calls += _exit_calls(session, vault, policy, changes)
    if int(delay) != policy.timelock_delay:
        payload = selector_of("updateDelay(uint256)") + encode(["uint256"], [policy.timelock_delay])
        calls.append(
            timelock_ops.ScheduledCall(
                vault.timelock, 0, payload, f"timelock delay {delay}s -> {policy.timelock_delay}s"
            )
        )
        changes.append(Change("timelock", f"timelock delay {delay}s -> {policy.timelock_delay}s"))
    if policy.risk_class != vault.risk_class:
        changes.append(
            Change("risk_class", f"risk class {vault.risk_class} -> {policy.risk_class} (recorded with the template)")
        )
    return ChangePlan(vault, policy, config, tuple(changes), tuple(calls), needs_guard, guard)


def apply_change(
    session: Session, vault_ref: str | int, template: str | Path, *, proposer: str = ""
) -> tuple[proposals.Proposal, timelock_ops.TimelockOp]:
    """Deploy the new guard (if needed) and propose the timelock batch that installs the template."""
    plan = plan_change(session, vault_ref, template)
    vault = plan.vault
    if not plan.changes and not plan.calls:
        raise TemplateError(f"template {template} changes nothing on vault {vault.name}")
    timelock_ops.require_no_pending(session, vault.id)
    calls = list(plan.calls)
    new_guard = None
    if plan.needs_guard:
        new_guard = _deploy_guard(session, vault, plan)
        inner = selector_of("setGuard(address)") + encode(["address"], [new_guard])
        calls.insert(
            len([c for c in calls if c.target == vault.safe]),
            _module_call(
                vault.safe, inner, f"install guard {new_guard} (policy 0x{plan.config.policy_hash.hex()[:16]}…)"
            ),
        )
    summary = "; ".join(c.description for c in plan.changes) or "re-apply template"
    return timelock_ops.schedule(
        session,
        vault,
        calls,
        kind="policy_change",
        description=summary,
        salt_seed=plan.policy.template_hash,
        proposer=proposer,
        new_guard=new_guard,
        policy_path=str(template),
        policy_source=plan.policy.source_text,
    )


def _deploy_guard(session: Session, vault: VaultRecord, plan: ChangePlan) -> Address:
    """The guard that will enforce ``plan``, deployed through the GuardDeployer: a successor of the installed
    guard (the only kind the installed guard accepts), or — on a vault without a guard — a first one."""
    infra = session.infrastructure()
    deployer = session.contract("GuardDeployer", infra.guard_deployer)
    as_clone = plan.policy.guard_deployment == "clone"
    if plan.current_guard is None:
        function, args = (
            "deployFor",
            [
                vault.safe,
                vault.timelock,
                infra.multisend_call_only,
                vault.exit_module or ZERO_ADDRESS,
                infra.fallback_handler,
                plan.config.as_tuple(),
                as_clone,
            ],
        )
    else:
        function, args = "deploySuccessor", [plan.current_guard, plan.config.as_tuple(), as_clone]
    predicted = Address(session.chain.call(deployer.functions[function](*args).call))
    if codehash(session.chain, predicted) is None:
        data = deployer.encode_abi(function, args)
        session.send(
            to=infra.guard_deployer, data=bytes.fromhex(data[2:]), what=f"deploying the new guard of {vault.name}"
        )
    return predicted


def cancel_change(session: Session, vault_ref: str | int, op_id: str, *, proposer: str = "") -> proposals.Proposal:
    """Propose the Safe's cancellation of a scheduled (or still proposed) timelock operation."""
    vault = get_vault(session, vault_ref)
    op = timelock_ops.get_op(session, op_id)
    if op.vault_id != vault.id:
        raise ProposalError(f"timelock operation {op.op_id[:18]}… belongs to another vault")
    if op.state not in (timelock_ops.OpState.SCHEDULED, timelock_ops.OpState.PROPOSED):
        raise ProposalError(f"timelock operation {op.op_id[:18]}… is {op.state.value}; nothing to cancel")
    if op.state is timelock_ops.OpState.PROPOSED:
        proposal = proposals.get_proposal(session, op.proposal_id)
        proposals.discard(session, proposal)
        timelock_ops._update(
            session, op.op_id, state=timelock_ops.OpState.CANCELLED.value, audit_state={"state": "cancelled"}
        )
        return proposals.get_proposal(session, op.proposal_id)
    lock = session.contract("VaultTimelock", vault.timelock)
    data = bytes.fromhex(lock.encode_abi("cancel", [bytes.fromhex(op.op_id[2:])])[2:])
    proposal = proposals.propose(
        session,
        vault.id,
        to=vault.timelock,
        data=data,
        description=f"cancel timelock operation {op.op_id[:18]}…",
        proposer=proposer,
    )
    timelock_ops._update(session, op.op_id, cancel_proposal_id=proposal.id)
    return proposal


def record_applied(session: Session, op: timelock_ops.TimelockOp) -> None:
    """After a policy change executed: the workspace's vault record follows the chain."""
    if op.kind != "policy_change" or op.policy_source is None:
        return

    policy = load_policy_text(op.policy_source, op.policy_path or "<template>")
    policy_hash = "0x" + policy.template_hash.hex()
    values = {
        "policy_path": op.policy_path,
        "policy_source": op.policy_source,
        "policy_hash": policy_hash,
        "risk_class": policy.risk_class,
    }
    if op.new_guard:
        values["guard"] = op.new_guard
    with session.store.begin() as conn:
        remember_template(conn, policy_hash, op.policy_source, op.policy_path or "<template>")
        conn.execute(vaults.update().where(vaults.c.id == op.vault_id).values(**values))


def execute(session: Session, ref: str | int, *, force: bool = False) -> tuple[str, Receipt]:
    """``custody tx execute``: execute a proposal, or — when the proposal scheduled a timelock
    operation that is now due — complete that operation. Returns (what, receipt)."""
    proposal = proposals.get_proposal(session, ref)
    op = timelock_ops.op_for_proposal(session, proposal.id)
    if proposal.state is proposals.ProposalState.EXECUTED and op is not None and op.proposal_id == proposal.id:
        receipt = timelock_ops.complete(session, op, on_done=lambda done: record_applied(session, done))
        return "timelock_operation", receipt
    return "proposal", proposals.execute(session, proposal, force=force)
