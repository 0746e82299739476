"""custody policy check|explain"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from custody.cli._app import AppContext, emit_file_problems, json_option, pass_app, table
from custody.policy.explain import controls_index, rules
from custody.policy.template import check_policy, load_policy
from custody.vault.identities import PROPOSER_HELP, resolve_proposer


@click.group()
def policy() -> None:
    """Policy templates: validate and explain."""


@policy.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@pass_app
def check(app: AppContext, files: tuple[str, ...]) -> None:
    """Validate templates; reports every problem with file, line and field."""
    emit_file_problems(app, files, check_policy)


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def explain(app: AppContext, file: str) -> None:
    """Every rule of FILE and the compliance controls it serves."""
    p = load_policy(file)
    items = rules(p)
    index = controls_index(items)

    def render(c: Console) -> None:
        c.print(f"[bold]{p.name}[/bold] ({p.risk_class}) — {p.description}")
        t = table("rule", "enforces", "controls", "enforced by")
        for r in items:
            t.add_row(r.id, r.description, ", ".join(r.controls) or "[red]none[/red]", r.enforced_by)
        c.print(t)
        t = table("control", "rules")
        for control, rule_ids in index.items():
            t.add_row(control, ", ".join(rule_ids))
        c.print(t)

    app.emit(
        {"name": p.name, "risk_class": p.risk_class, "rules": [r.as_dict() for r in items], "controls": index}, render
    )


def _render_plan(c: Console, plan: dict[str, Any]) -> None:
    c.print(f"[bold]{plan['vault']}[/bold] ← {plan['template']}")
    if not plan["changes"]:
        c.print("  no changes")
    for change in plan["changes"]:
        c.print(f"  [yellow]~[/yellow] {change['area']}: {change['description']}")
    if plan["needs_new_guard"]:
        c.print(f"  a new CustodyGuard will be deployed (policy hash {plan['new_policy_hash']})")
    for call in plan["calls"]:
        c.print(f"  timelock call → {call['target']}: {call['description']}")


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--vault", "vault_ref", required=True, metavar="VAULT")
@json_option
@pass_app
def diff(app: AppContext, file: str, vault_ref: str) -> None:
    """What applying FILE to VAULT would change on-chain."""
    from custody.policy.change import plan_change

    plan = plan_change(app.session(), vault_ref, file).as_dict()
    app.emit(plan, lambda c: _render_plan(c, plan))


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--vault", "vault_ref", required=True, metavar="VAULT")
@click.option("--proposer", default="", metavar="URI|NAME", help=PROPOSER_HELP)
@json_option
@pass_app
def apply(app: AppContext, file: str, vault_ref: str, proposer: str) -> None:
    """Schedule FILE on VAULT's timelock: deploys the new guard and proposes the schedule."""
    from custody.policy.change import apply_change, plan_change

    session = app.session()
    plan = plan_change(session, vault_ref, file).as_dict()
    proposal, op = apply_change(session, vault_ref, file, proposer=resolve_proposer(session, proposer, optional=True))
    data = {"plan": plan, "proposal": proposal.id, "safe_tx_hash": proposal.safe_tx_hash, "operation": op.as_dict()}

    def render(c: Console) -> None:
        _render_plan(c, plan)
        c.print(f"proposal {proposal.id} schedules timelock operation {op.op_id} ({op.delay}s delay)")
        c.print(
            f"next: `custody tx sign {proposal.id} --signer …` by the owners, `custody tx execute {proposal.id}`, "
            f"then after the delay `custody tx execute {proposal.id}` again"
        )

    app.emit(data, render)


@policy.command()
@click.option("--vault", "vault_ref", metavar="VAULT", help="Only this vault's operations.")
@json_option
@pass_app
def ops(app: AppContext, vault_ref: str | None) -> None:
    """Timelocked operations (policy changes) and their state."""
    from custody.vault.service import get_vault
    from custody.vault.timelock_ops import list_ops

    session = app.session()
    vault_id = get_vault(session, vault_ref).id if vault_ref else None
    items = [o.as_dict() for o in list_ops(session, vault_id)]

    def render(c: Console) -> None:
        t = table("operation", "vault", "state", "ready at (UTC)", "proposal", "description")
        for o in items:
            t.add_row(
                o["op_id"][:18] + "…",
                str(o["vault_id"]),
                o["state"],
                o["ready_at_utc"] or "-",
                str(o["proposal_id"]),
                o["description"],
            )
        c.print(t)

    app.emit(items, render)


@policy.command()
@click.argument("op_id", metavar="OPERATION")
@click.option("--vault", "vault_ref", required=True, metavar="VAULT")
@click.option("--proposer", default="")
@json_option
@pass_app
def cancel(app: AppContext, op_id: str, vault_ref: str, proposer: str) -> None:
    """Propose the Safe's cancellation of a scheduled policy change (or discard an unscheduled one)."""
    from custody.policy.change import cancel_change

    session = app.session()
    proposal = cancel_change(session, vault_ref, op_id, proposer=resolve_proposer(session, proposer, optional=True))
    app.emit(
        {"proposal": proposal.id, "state": proposal.state.value},
        lambda c: c.print(
            f"proposal {proposal.id} discarded; the change is withdrawn"
            if proposal.state.value == "discarded"
            else f"proposal {proposal.id} cancels the operation once the owners sign and execute it"
        ),
    )
