"""custody vault create|list|show"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.cli._lazy import LazyCommand, LazyGroup
from custody.types import format_amount
from custody.vault import service

if TYPE_CHECKING:  # annotations only: `vault list|show|create` need neither proposals nor the risk engine behind them
    from custody.vault.proposals import Proposal
    from custody.vault.timelock_ops import TimelockOp


@click.group(
    cls=LazyGroup,
    lazy_commands={  # defined next to the code they share (tests/test_cli_lazy.py checks the short help)
        "fund": LazyCommand(
            "custody.cli.fund_cmd",
            "fund_cmd",
            "Send ETH or an ERC-20 to VAULT's Safe from a funded account (local Anvil chains only).",
        ),
        "forget": LazyCommand(
            "custody.cli.workspace_cmd",
            "forget_cmd",
            "Drop the record of vault NAME (and its proposals) from this workspace; the chain is not touched or needed.",
        ),
    },
)
def vault() -> None:
    """Micro-vaults: Safe + timelock created from a policy template."""


@vault.command()
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.option("--name", help="Vault name [the template's name].")
@json_option
@pass_app
def create(app: AppContext, policy_file: str, name: str | None) -> None:
    """Deploy a micro-vault from POLICY_FILE."""
    session = app.session()
    record, facts = service.create_vault(session, policy_file, name=name)
    data = {
        "id": record.id,
        "name": record.name,
        "risk_class": record.risk_class,
        "safe": record.safe,
        "timelock": record.timelock,
        "policy_hash": record.policy_hash,
        **facts,
    }

    def render(c: Console) -> None:
        verb = "found existing" if facts["resumed"] else "created"
        c.print(f"{verb} vault {record.id} [bold]{record.name}[/bold] ({record.risk_class})")
        c.print(f"  safe      {record.safe}\n  timelock  {record.timelock}")
        c.print(f"  tx        {facts['tx_hash']} (block {facts['block']}, gas {facts['gas_used']})")

    app.emit(data, render)


def _state_dict(state: service.VaultState) -> dict[str, Any]:
    r = state.record
    return {
        "id": r.id,
        "name": r.name,
        "risk_class": r.risk_class,
        "safe": r.safe,
        "timelock": r.timelock,
        "block": state.block_number,
        "owners": state.owners,
        "threshold": state.threshold,
        "nonce": state.nonce,
        "safe_version": state.version,
        "singleton": state.singleton,
        "singleton_is_canonical": state.singleton_is_canonical,
        "modules": state.modules,
        "guard": state.guard,
        "fallback_handler": state.fallback_handler,
        "fallback_handler_is_custody": state.fallback_handler_is_custody,
        "timelock_delay": state.timelock_delay,
        "timelock_roles_ok": state.timelock_roles_ok,
        "timelock_is_factory_clone": state.timelock_is_factory_clone,
        "guard_code": None if state.guard_code is None else state.guard_code.as_dict(),
        "guard_code_policy_matches": state.code_policy_matches,
        "balances": [
            {
                "symbol": b.symbol,
                "token": b.token,
                "decimals": b.decimals,
                "balance": None if b.balance is None else str(b.balance),
                "display": b.problem if b.balance is None else format_amount(b.balance, b.decimals),
            }
            for b in state.balances
        ],
        "policy_path": r.policy_path,
        "policy_hash": r.policy_hash,
        "created_tx": r.created_tx,
        "policy": None
        if state.guard_info is None
        else {
            "guard": state.guard_info.address,
            "guard_version": state.guard_info.version,
            "policy_hash": "0x" + state.guard_info.policy_hash.hex(),
            "template_hash": "0x" + state.guard_info.template_hash.hex(),
            "previous_guard": state.guard_info.previous_guard,
            "message_domains": ["0x" + x.hex() for x in state.guard_info.message_domain_separators],
            "matches_recorded_template": state.recorded_policy_matches,
            "template_file": state.template_file_status,
            "rules": _onchain_rules(state),
        },
    }


def _onchain_rules(state: service.VaultState) -> list[str]:
    from custody.policy.preflight import DAYS

    info = state.guard_info
    if info is None:  # no guard installed: no on-chain rules
        return []
    cfg = info.config
    symbols = {b.token: (b.symbol, b.decimals) for b in state.balances if b.token}
    out = []
    for i, a in enumerate(cfg.assets):
        symbol, decimals = ("ETH", 18) if a.token == "0x" + "00" * 20 else symbols.get(a.token, (a.token, 0))
        dests = [d.account for d in cfg.destinations if d.asset_mask >> i & 1]
        where = "any destination" if cfg.unrestricted_mask >> i & 1 else (", ".join(dests) or "nowhere")
        out.append(
            f"{symbol}: ≤ {format_amount(a.per_tx_limit, decimals)} per tx, ≤ {format_amount(a.daily_limit, decimals)} per rolling 24 h, to {where}"
        )
    for start, end in cfg.freeze_windows:
        day, s = divmod(start, 86400)
        out.append(f"frozen {DAYS[day]} {s // 3600:02d}:{s % 3600 // 60:02d} UTC for {(end - start) // 60} min")
    if cfg.allowed_end:
        out.append(
            f"transfers only {cfg.allowed_start // 3600:02d}:{cfg.allowed_start % 3600 // 60:02d}-{cfg.allowed_end // 3600:02d}:{cfg.allowed_end % 3600 // 60:02d} UTC"
        )
    for domain, separator in zip(cfg.message_domains, info.message_domain_separators):
        out.append(f"may sign EIP-712 messages for {domain.verifying_contract} (domain separator 0x{separator.hex()})")
    if not cfg.message_domains:
        out.append("signs no messages (ERC-1271 answers for nothing)")
    return out


@vault.command("list")
@json_option
@pass_app
def list_cmd(app: AppContext) -> None:
    """Vaults of this workspace, with live state read from the chain."""
    session = app.session()
    states = [service.read_state(session, r) for r in service.list_vaults(session)]
    data = [_state_dict(s) for s in states]

    def render(c: Console) -> None:
        if not states:
            c.print("no vaults yet: `custody vault create policies/hot.yaml`")
            return
        t = table("id", "name", "class", "safe", "owners", "nonce", "ETH", "timelock")
        for s in states:
            eth = next(b for b in s.balances if b.token is None)
            t.add_row(
                str(s.record.id),
                s.record.name,
                s.record.risk_class,
                s.record.safe,
                f"{s.threshold}-of-{len(s.owners)}",
                str(s.nonce),
                format_amount(eth.balance, 18) if eth.balance is not None else "?",
                f"{s.timelock_delay}s",
            )
        c.print(t)

    app.emit(data, render)


@vault.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def show(app: AppContext, vault_ref: str) -> None:
    """Live state of VAULT (id, name or Safe address), read from the chain."""
    session = app.session()
    state = service.read_state(session, service.get_vault(session, vault_ref))
    data = _state_dict(state)

    def render(c: Console) -> None:
        r = state.record
        c.print(f"[bold]{r.name}[/bold] (vault {r.id}, {r.risk_class}) at block {state.block_number}")
        c.print(
            f"  safe           {r.safe}  (Safe {state.version}, singleton {'canonical' if state.singleton_is_canonical else 'NOT canonical: ' + str(state.singleton)})"
        )
        c.print(f"  owners         {state.threshold}-of-{len(state.owners)}")
        for owner in state.owners:
            c.print(f"                 {owner}")
        c.print(f"  nonce          {state.nonce}")
        c.print(
            f"  timelock       {r.timelock}  delay {state.timelock_delay}s, "
            f"roles {'ok' if state.timelock_roles_ok else 'WRONG'}, "
            f"code {'factory clone' if state.timelock_is_factory_clone else '[red]NOT the factory clone[/red]'}"
        )
        c.print(f"  modules        {', '.join(state.modules) or '-'}")
        c.print(f"  guard          {state.guard or '[red]none[/red]'}")
        if state.guard_code is not None:
            c.print(f"  guard code     {_guard_code_line(state)}")
        if state.guard_info is not None:
            g = state.guard_info
            match = "[green]matches[/green]" if state.recorded_policy_matches else "[bold red]DIFFERS from[/bold red]"
            c.print(
                f"  policy hash    0x{g.policy_hash.hex()} ({match} the recorded template; template file: {state.template_file_status})"
            )
            for rule in _onchain_rules(state):
                c.print(f"                 {rule}")
        handler_note = (
            "CustodyFallbackHandler"
            if state.fallback_handler_is_custody
            else "[bold red]NOT the custody handler[/bold red]"
        )
        c.print(
            f"  fallback       {state.fallback_handler or '-'}"
            + (f" ({handler_note})" if state.fallback_handler else "")
        )
        for b in state.balances:
            shown = f"[yellow]{b.problem}[/yellow]" if b.balance is None else format_amount(b.balance, b.decimals)
            c.print(f"  balance        {shown} {b.symbol}")
        c.print(f"  policy         {r.policy_path} ({r.policy_hash[:18]}…)")

    app.emit(data, render)


def _guard_code_line(state: service.VaultState) -> str:
    """What the guard's code proves: the build it is, and whether its policy is the recorded template's."""
    code = state.guard_code
    assert code is not None
    if not code.verified:
        return f"[bold red]NOT the reproducible build[/bold red] ({code.problem})"
    kind = (
        f"clone of CustodyGuardClone {code.implementation}" if code.deployment == "clone" else "dedicated CustodyGuard"
    )
    policy = "matches" if state.code_policy_matches else "[bold red]DIFFERS from[/bold red]"
    return (
        f"{kind}: the committed build, registered for this Safe; the policy in its code {policy} the recorded template"
    )


def _emit_op(app: AppContext, proposal: Proposal, op: TimelockOp) -> None:
    app.emit(
        {"proposal": proposal.id, "operation": op.as_dict()},
        lambda c: c.print(
            f"proposal {proposal.id} schedules {op.kind.replace('_', ' ')} on the timelock ({op.delay} s delay); "
            f"sign and execute it, then `custody tx execute {proposal.id}` after the delay"
        ),
    )


@vault.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def pause(app: AppContext, vault_ref: str) -> None:
    """Propose freezing VAULT now (no delay): no owner-signed transfer or call until unpaused."""
    from custody.vault.resilience import pause as do_pause

    proposal = do_pause(app.session(), vault_ref)
    app.emit(
        {"proposal": proposal.id, "safe_tx_hash": proposal.safe_tx_hash},
        lambda c: c.print(f"proposal {proposal.id} pauses the vault once the owners sign and execute it"),
    )


@vault.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def unpause(app: AppContext, vault_ref: str) -> None:
    """Schedule lifting the freeze (through the timelock: effective after its delay)."""
    from custody.vault.resilience import unpause as do_unpause

    _emit_op(app, *do_unpause(app.session(), vault_ref))


@vault.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def prime(app: AppContext, vault_ref: str) -> None:
    """Pre-write the never-written ring slots of VAULT's clone guard (one transaction from the sender), so no
    transfer pays a slot's first storage write; changes no limit."""
    from custody.vault.spend_window import prime_spend_window

    done = prime_spend_window(app.session(), vault_ref)

    def render(c: Console) -> None:
        if done.slots:
            c.print(
                f"primed {done.slots} ring slot(s) of the clone guard {done.guard} of vault {done.vault} "
                f"(tx {done.tx_hash}, {done.gas_used:,} gas): no transfer of the vault pays a ring slot's first write"
            )
        elif done.deployment == "dedicated":
            c.print(f"nothing to prime: vault {done.vault}'s dedicated guard {done.guard} primed its ring at creation")
        else:
            c.print(f"nothing to prime: every ring slot of vault {done.vault}'s guard {done.guard} is written already")

    app.emit(done.as_dict(), render)


@vault.command("rotate-owner")
@click.argument("vault_ref", metavar="VAULT")
@click.option("--old", required=True, metavar="ADDRESS")
@click.option("--new", required=True, metavar="ADDRESS")
@json_option
@pass_app
def rotate_owner(app: AppContext, vault_ref: str, old: str, new: str) -> None:
    """Swap owner OLD for NEW through the timelock."""
    from custody.vault.resilience import rotate_owner as rotate

    session = app.session()
    _emit_op(app, *rotate(session, vault_ref, old, new, session.workspace.home / "templates"))


@vault.command("set-threshold")
@click.argument("vault_ref", metavar="VAULT")
@click.argument("threshold", type=int)
@json_option
@pass_app
def set_threshold(app: AppContext, vault_ref: str, threshold: int) -> None:
    """Lower or raise the signature threshold through the timelock."""
    from custody.vault.resilience import change_threshold

    session = app.session()
    _emit_op(app, *change_threshold(session, vault_ref, threshold, session.workspace.home / "templates"))
