"""custody tx propose|list|show|sign|execute"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.cli._lazy import LazyCommand, LazyGroup
from custody.exceptions import AlreadyExecuted
from custody.risk.verdict import Decision
from custody.vault import proposals
from custody.vault.clear import require_acknowledged
from custody.vault.decode import RISK_KINDS
from custody.vault.identities import PROPOSER_HELP, resolve_proposer
from custody.vault.service import get_vault


@click.group(
    cls=LazyGroup,
    lazy_commands={  # out-of-band confirmation and air-gapped signing live in their own modules
        "challenge": LazyCommand(
            "custody.cli.oob_cmd",
            "challenge",
            "Print a one-time code bound to proposal ID's safeTxHash, to read to NAME over a second channel.",
        ),
        "confirm": LazyCommand(
            "custody.cli.oob_cmd",
            "confirm",
            "Record an out-of-band confirmation of proposal ID by NAME (TOTP or a challenge code).",
        ),
        "export": LazyCommand(
            "custody.cli.offline_cmd",
            "export_cmd",
            "Write proposal ID as a Safe-Transaction-Service-style JSON file for an air-gapped signer.",
        ),
        "sign-offline": LazyCommand(
            "custody.cli.offline_cmd",
            "sign_offline",
            "Sign an exported transaction without any RPC: every hash is recomputed from the file's fields first.",
        ),
        "import-signature": LazyCommand(
            "custody.cli.offline_cmd",
            "import_signature",
            "Add an owner signature from a signature file (hashes and signer checked against the chain).",
        ),
    },
)
def tx() -> None:
    """Transfer proposals: propose, review, sign (one owner per call), execute."""


def render_proposal(c: Console, d: dict[str, Any]) -> None:
    c.print(f"[bold]proposal {d['id']}[/bold] ({d['state']}) on vault {d['vault_id']} — {d['description']}")
    c.print(f"  action          {d['decoded']['summary']}")
    op = d["operation"]
    c.print(f"  operation       {'[bold red]DELEGATECALL[/bold red]' if op == 'DELEGATECALL' else op}")
    c.print(f"  to              {d['to']}")
    c.print(f"  value           {d['value']} wei")
    c.print(f"  data            {d['data'] if len(d['data']) <= 140 else d['data'][:138] + '…'}")
    c.print(f"  nonce           {d['nonce']}")
    c.print(f"  chain id        {d['chain_id']}    safe {d['safe']}")
    c.print(f"  domain hash     {d['domain_hash']}")
    c.print(f"  message hash    {d['message_hash']}")
    c.print(f"  safeTxHash      {d['safe_tx_hash']}")
    if d["hash_matches_chain"] is not None:
        verdict = (
            "[green]matches the Safe's getTransactionHash[/green]"
            if d["hash_matches_chain"]
            else "[bold red]DIFFERS from the Safe's getTransactionHash[/bold red]"
        )
        c.print(f"                  {verdict}")
    for i, inner in enumerate(d["decoded"].get("calls", []), 1):
        render_inner(c, inner, f"{i}")
    for risk in d.get("risks", d["decoded"]["risks"]):
        c.print(f"  [bold yellow]risk[/bold yellow]            {risk}")
    if d.get("risk_kinds"):
        c.print(
            f"  [bold yellow]to sign[/bold yellow]         --i-understand {' --i-understand '.join(d['risk_kinds'])}"
        )
    oob = d.get("out_of_band") or {}
    if oob.get("required"):
        done = ", ".join(f"{c['confirmer']} ({c['method']}, {c['confirmed_at']})" for c in oob["confirmations"])
        c.print(f"  [bold yellow]out-of-band[/bold yellow]     required: {'; '.join(oob['reasons'])}")
        c.print(f"                  confirmed by: {done or '[red]nobody yet[/red]'}")
    risk = d.get("risk")
    if risk is not None:
        colour = {"accept": "green", "warn": "yellow", "deny": "bold red"}[risk["verdict"]]
        c.print(
            f"  risk            [{colour}]{risk['verdict'].upper()}[/{colour}] (at {risk['stage']}, ledger entry "
            f"{risk['seq']}; `custody risk explain {d['id']}`)"
        )
        for reason in risk["reasons"]:
            c.print(f"                  {reason['severity']} {reason['code']}: {reason['message']}")
    signed = [s for s in d["signatures"] if s["valid"]]
    c.print(f"  signatures      {len(signed)} of {d['threshold']} required")
    for s in d["signatures"]:
        c.print(f"                  {s['signer']} ({s['kind']}{'' if s['valid'] else ', NOT VALID'})")
    if d["exec_tx_hash"]:
        c.print(f"  executed in     {d['exec_tx_hash']} (block {d['exec_block']}, gas {d['exec_gas_used']})")


def render_verdict(c: Console, decision: Decision) -> None:
    """The risk engine's verdict, printed before any signer is asked."""
    colour = {"accept": "green", "warn": "yellow", "deny": "bold red"}[decision.verdict.value]
    c.print(
        f"  risk verdict    [{colour}]{decision.verdict.value.upper()}[/{colour}] ({decision.latency_us / 1000:.1f} ms)"
    )
    for reason in decision.reasons:
        if reason.severity.value != "info":
            c.print(f"                  {reason.severity.value} {reason.code}: {reason.message}")


def render_inner(c: Console, call: dict[str, Any], label: str) -> None:
    """One call inside a MultiSend batch or a timelock operation (recursively)."""
    op = call.get("operation", "CALL")
    flag = " [bold red]DELEGATECALL[/bold red]" if op == "DELEGATECALL" else ""
    c.print(f"  call {label:<10} {call['summary']}{flag}")
    for i, inner in enumerate(call.get("calls", []), 1):
        render_inner(c, inner, f"{label}.{i}")


@tx.command()
@click.argument("vault_ref", metavar="VAULT")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Destination (EIP-55 checksummed).")
@click.option("--amount", required=True, help="Human amount, e.g. 1.5 (ETH or token units).")
@click.option("--token", metavar="ADDRESS", help="ERC-20 token address [native ETH].")
@click.option("--nonce", type=int, help="Safe nonce [next free one].")
@click.option("--description", default="", help="Free text shown to signers.")
@click.option("--proposer", required=True, metavar="URI|NAME", help=PROPOSER_HELP)
@click.option("--force", is_flag=True, help="Record it even if the vault's policy would reject it (drills).")
@json_option
@pass_app
def propose(
    app: AppContext,
    vault_ref: str,
    to: str,
    amount: str,
    token: str | None,
    nonce: int | None,
    description: str,
    proposer: str,
    force: bool,
) -> None:
    """Propose a transfer out of VAULT (refused if the vault's on-chain policy would reject it)."""
    session = app.session()
    proposal = proposals.propose_transfer(
        session,
        vault_ref,
        to=to,
        amount=amount,
        token=token,
        nonce=nonce,
        description=description,
        proposer=resolve_proposer(session, proposer),
        force=force,
    )
    described = proposals.describe(session, proposal)
    app.emit(described, lambda c: render_proposal(c, described))


@tx.command("list")
@click.option("--vault", "vault_ref", metavar="VAULT", help="Only this vault's proposals.")
@json_option
@pass_app
def list_cmd(app: AppContext, vault_ref: str | None) -> None:
    """Proposals in this workspace."""
    session = app.session()
    vault = get_vault(session, vault_ref) if vault_ref else None
    items = proposals.list_proposals(session, vault)
    data = [
        {
            "id": p.id,
            "vault_id": p.vault_id,
            "state": p.state.value,
            "nonce": p.safe_tx.nonce,
            "description": p.description,
            "safe_tx_hash": p.safe_tx_hash,
            "signatures": len(p.signatures),
            "exec_tx_hash": p.exec_tx_hash,
        }
        for p in items
    ]

    def render(c: Console) -> None:
        t = table("id", "vault", "state", "nonce", "sigs", "description", "safeTxHash")
        for d in data:
            t.add_row(
                str(d["id"]),
                str(d["vault_id"]),
                str(d["state"]),
                str(d["nonce"]),
                str(d["signatures"]),
                str(d["description"]),
                str(d["safe_tx_hash"])[:18] + "…",
            )
        c.print(t)

    app.emit(data, render)


@tx.command()
@click.argument("ref", metavar="ID")
@json_option
@pass_app
def show(app: AppContext, ref: str) -> None:
    """Decoded call, hashes (checked against the chain) and signatures of proposal ID."""
    session = app.session()
    d = proposals.describe(session, proposals.get_proposal(session, ref))
    app.emit(d, lambda c: render_proposal(c, d))


SIGNER_HELP = "keystore:PATH | pkcs11:token=…;object=… | ledger:44'/60'/0'/0/0 | trezor:m/44'/60'/0'/0/0 | anvil:N"


def acknowledge_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--i-understand",
        "acknowledged",
        multiple=True,
        metavar="RISK",
        help=f"Sign a risky payload anyway; name each risk kind ({', '.join(sorted(RISK_KINDS))}).",
    )(fn)


def blind_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--blind",
        is_flag=True,
        help="Hardware wallets: sign the domain/message hashes only (the device cannot show the fields).",
    )(fn)


@tx.command()
@click.argument("ref", metavar="ID")
@click.option("--signer", "signer_uri", required=True, metavar="URI", help=SIGNER_HELP)
@acknowledge_option
@blind_option
@json_option
@pass_app
def sign(app: AppContext, ref: str, signer_uri: str, acknowledged: tuple[str, ...], blind: bool) -> None:
    """Approve proposal ID as one owner (shows what is signed first; risky payloads need --i-understand)."""
    session = app.session()
    proposal = proposals.get_proposal(session, ref)
    session.signers().blind = blind
    signer = session.signer(signer_uri)
    before = proposals.describe(session, proposal)
    if not app.json:
        render_proposal(app.err, before)
    require_acknowledged(before["risk_kinds"], acknowledged, what=f"proposal {proposal.id}")
    if blind:
        app.err.print(
            "[bold red]BLIND signing[/bold red]: a hardware wallet will show only hashes — check that it shows "
            f"domain hash {before['domain_hash']} and message hash {before['message_hash']}"
        )
    signature, added = proposals.sign(
        session, proposal, signer, on_decision=None if app.json else lambda decision: render_verdict(app.err, decision)
    )
    after = proposals.describe(session, proposals.get_proposal(session, ref))
    data = {
        "proposal": after,
        "signer": signature.signer,
        "signature": signature.to_hex(),
        "added": added,
        "already_signed": not added,
    }
    valid = sum(1 for s in after["signatures"] if s["valid"])
    app.emit(
        data,
        lambda c: c.print(
            f"{'signed' if added else 'already signed'} by {signature.signer}: {valid} of {after['threshold']} signatures"
        ),
    )


@tx.command()
@click.argument("ref", metavar="ID")
@click.option("--force", is_flag=True, help="Skip the policy pre-flight (the chain still enforces it).")
@json_option
@pass_app
def execute(app: AppContext, ref: str, force: bool) -> None:
    """Execute proposal ID once enough owners have signed; for a proposal that scheduled a
    timelock operation, complete that operation once its delay has passed.

    Repeating it is safe: a proposal (or operation) this workspace recorded as executed is reported with its
    transaction, nothing is sent, and the exit code is 0 (docs/error-codes.md)."""
    from custody.policy.change import execute as execute_any

    session = app.session()
    proposal = proposals.get_proposal(session, ref)
    try:
        what, receipt = execute_any(session, ref, force=force)
    except AlreadyExecuted as exc:
        if exc.details.get("state") != "executed":
            raise  # in flight elsewhere, or executed outside this workspace: not a plain repeat
        message = exc.message
        data = {
            "id": proposal.id,
            "executed": exc.details.get("what", "proposal"),
            "already_executed": True,
            "sent": False,
            "tx_hash": exc.details.get("tx_hash"),
            "block": exc.details.get("block"),
            "safe_tx_hash": proposal.safe_tx_hash,
            "message": message,
        }
        app.emit(data, lambda c: c.print(message))
        return
    data = {
        "id": proposal.id,
        "executed": what,
        "already_executed": False,
        "sent": True,
        "tx_hash": receipt.tx_hash,
        "block": receipt.block_number,
        "gas_used": receipt.gas_used,
        "safe_tx_hash": proposal.safe_tx_hash,
    }
    noun = "the timelock operation scheduled by proposal" if what == "timelock_operation" else "proposal"
    app.emit(
        data,
        lambda c: c.print(
            f"executed {noun} {proposal.id} in {receipt.tx_hash} (block {receipt.block_number}, gas {receipt.gas_used})"
        ),
    )


@tx.command()
@click.argument("ref", metavar="ID")
@json_option
@pass_app
def discard(app: AppContext, ref: str) -> None:
    """Withdraw proposal ID (never executed); its nonce becomes free again."""
    session = app.session()
    proposal = proposals.discard(session, proposals.get_proposal(session, ref))
    nonce = proposal.safe_tx.nonce
    waiting = (
        []
        if nonce < proposals.safe_nonce(session, proposal.safe_tx.safe)
        else proposals.waiting_behind(session, proposal)
    )
    data = {
        "id": proposal.id,
        "state": proposal.state.value,
        "freed_nonce": nonce,
        "waiting": [{"id": w.id, "nonce": w.safe_tx.nonce} for w in waiting],
    }

    def render(c: Console) -> None:
        c.print(f"proposal {proposal.id} discarded; nonce {nonce} is free again")
        if waiting:
            held = ", ".join(f"{w.id} (nonce {w.safe_tx.nonce})" for w in waiting)
            c.print(
                f"proposal {held} now wait{'s' if len(waiting) == 1 else ''} for a transaction with nonce "
                f"{nonce}: propose one with --nonce {nonce}, or discard and propose them again"
            )

    app.emit(data, render)
