"""custody attest — EAS attestation badges for custody steps (issue, revoke, batch, verify)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from custody.attest import auto, badges, batch, steps
from custody.attest.ledger_link import LedgerView
from custody.attest.schemas import STEPS, step
from custody.attest.verify import Report, Verifier
from custody.cli._app import AppContext, json_option, pass_app, table
from custody.exceptions import AttestationError, InputError
from custody.policy.template import parse_duration
from custody.session import ATTESTER_ENV
from custody.signers.base import Signer

attester_option = click.option(
    "--attester",
    "attester_uri",
    metavar="URI",
    envvar=ATTESTER_ENV,
    help=f"Signer URI of the attester key (keystore:, pkcs11:, ledger:, trezor:, anvil:) [${ATTESTER_ENV}].",
)


def _attester(app: AppContext, uri: str | None) -> Signer:
    uri = uri or app.attester
    if not uri:
        raise InputError(f"name the attester key with --attester URI or ${ATTESTER_ENV}")
    session = app.session()
    session.attester_uri = uri
    attester = session.attester()
    if attester is None:
        raise InputError(f"the attester key {uri} could not be opened")
    return attester


def _vault_address(app: AppContext, ref: str | None) -> str:
    if ref is None:
        return "0x" + "00" * 20
    from custody.vault.service import get_vault

    text = ref.strip()
    if text.lower().startswith("0x") and len(text) == 42:
        try:
            return get_vault(app.session(), text).safe
        except Exception:
            from custody.types import parse_address

            return parse_address(text, what="vault")
    return get_vault(app.session(), text).safe


def _expiry(app: AppContext, raw: str | None) -> int:
    if raw is None:
        return 0
    if raw.isdigit() and len(raw) >= 9:
        return int(raw)  # a unix time
    try:
        return app.session().chain.latest_timestamp() + parse_duration(raw)
    except ValueError as exc:
        raise InputError(f"--expires: {exc} (or give a unix time)") from None


@click.group("attest")
def attest() -> None:
    """On-chain attestation badges (Ethereum Attestation Service) for custody steps."""


@attest.command()
@json_option
@pass_app
def schemas(app: AppContext) -> None:
    """EAS on this chain and the custody schemas (registered now if missing)."""
    ctx = badges.context(app.session())
    data = {
        "eas": ctx.address,
        "schema_registry": ctx.deployment.registry,
        "version": ctx.deployment.version,
        "chain_id": ctx.deployment.chain_id,
        "schemas": ctx.schemas,
    }

    def render(c: Console) -> None:
        c.print(f"EAS {ctx.address} (v{ctx.deployment.version}), schema registry {ctx.deployment.registry}")
        t = table("step", "schema UID", "fields")
        for name, s in ctx.schemas.items():
            t.add_row(name, s["uid"], s["schema"])
        c.print(t)

    app.emit(data, render)


@attest.command()
@click.argument("step_name", metavar="STEP", type=click.Choice(list(STEPS)))
@click.option("--subject", required=True, metavar="ADDRESS", help="The badge's recipient (signer, vault, token).")
@click.option("--vault", "vault_ref", metavar="VAULT", help="The vault the step belongs to (name, id or address).")
@click.option("--field", "raw_fields", multiple=True, metavar="NAME=VALUE", help="A schema field (repeatable).")
@click.option("--ref", "ref_uid", metavar="UID", help="An earlier badge this one refers to (refUID).")
@click.option("--expires", metavar="DURATION|UNIXTIME", help="Expiry, e.g. 365d (KYC validity).")
@attester_option
@json_option
@pass_app
def issue(
    app: AppContext,
    step_name: str,
    subject: str,
    vault_ref: str | None,
    raw_fields: tuple[str, ...],
    ref_uid: str | None,
    expires: str | None,
    attester_uri: str | None,
) -> None:
    """Attest one custody STEP on chain (``custody attest schemas`` lists each step's fields)."""
    st = step(step_name)
    pairs: dict[str, str] = {}
    for item in raw_fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--field {item!r} is not NAME=VALUE")
        pairs[name.strip()] = value
    names = {n for _t, n in st.fields}
    if "vault" in names and "vault" not in pairs:
        pairs["vault"] = _vault_address(app, vault_ref)
    if step_name == "kyc" and "subject" not in pairs:
        pairs["subject"] = subject
    for n in ("ledgerEntry",):
        if n in names and n not in pairs:
            pairs[n] = "0x" + "00" * 32
    fields = badges.coerce_fields(st, pairs)
    missing = sorted(names - set(fields))
    if missing:
        raise InputError(f"{step_name} badges need --field for {', '.join(missing)} (schema: {st.schema})")
    attester = _attester(app, attester_uri)
    badge = badges.issue(
        app.session(),
        step_name,
        attester=attester,
        recipient=subject,
        fields=fields,
        ref_uid=badges.parse_uid(ref_uid, "--ref") if ref_uid else badges.ZERO32,
        expiration=_expiry(app, expires),
    )
    app.emit(
        badge.as_dict(), lambda c: c.print(f"{step_name} badge {badge.uid} by {badge.attester} in {badge.tx_hash}")
    )


@attest.command()
@click.argument("uid")
@attester_option
@json_option
@pass_app
def revoke(app: AppContext, uid: str, attester_uri: str | None) -> None:
    """Revoke a badge (on chain, or an off-chain attestation via EAS revokeOffchain)."""
    session = app.session()
    attester = _attester(app, attester_uri)
    uid_bytes = badges.parse_uid(uid)
    if badges.raw_attestation(session, uid_bytes) is not None:
        badge, tx = badges.revoke(session, uid, attester=attester)
        data = {
            "uid": badge.uid,
            "mode": "onchain",
            "revoked_tx": tx,
            "already_revoked": tx is None,
            "revocation_time": badge.revocation_time,
        }
    else:
        if not batch.stored_documents(session, [badges.hex32(uid_bytes)]):
            app.note(
                f"{badges.hex32(uid_bytes)} is not on chain nor in this workspace: revoking it as an off-chain UID"
            )
        tx = batch.revoke_offchain(session, uid, attester=attester)
        data = {"uid": badges.hex32(uid_bytes), "mode": "offchain", "revoked_tx": tx, "already_revoked": tx is None}
    app.emit(
        data,
        lambda c: c.print(
            f"badge {data['uid']} {'was already revoked' if data['already_revoked'] else 'revoked in ' + str(data['revoked_tx'])}"
        ),
    )


@attest.command("batch")
@click.argument("step_name", metavar="STEP", type=click.Choice(list(STEPS)))
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help='JSON lines: {"recipient": ADDR, "fields": {...}, "ref": UID?, "expires": UNIXTIME?}.',
)
@click.option("--vault", "vault_ref", metavar="VAULT", help="Fills each item's vault field when absent.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the signed documents here.")
@attester_option
@json_option
@pass_app
def batch_cmd(
    app: AppContext,
    step_name: str,
    input_path: str,
    vault_ref: str | None,
    out_path: str | None,
    attester_uri: str | None,
) -> None:
    """Off-chain EAS attestations for many steps, anchored by one on-chain timestamp."""
    st = step(step_name)
    vault = _vault_address(app, vault_ref) if vault_ref else None
    items = []
    try:
        lines = Path(input_path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{input_path} cannot be read: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            raw = {k: v for k, v in obj["fields"].items()}
            recipient = obj["recipient"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f'{input_path} line {number}: expected {{"recipient", "fields"}} JSON ({exc})') from None
        if vault and "vault" not in raw:
            raw["vault"] = vault
        try:
            fields = badges.coerce_fields(st, raw)
        except InputError as exc:
            raise InputError(f"{input_path} line {number}: {exc.message}") from None
        items.append(
            batch.BatchItem(
                recipient=recipient,
                fields=fields,
                ref_uid=badges.parse_uid(obj["ref"], "ref") if obj.get("ref") else badges.ZERO32,
                expiration=int(obj.get("expires") or 0),
            )
        )
    result = _run_batch(
        app,
        lambda progress: batch.issue_batch(
            app.session(), step_name, attester=_attester(app, attester_uri), items=items, progress=progress
        ),
    )
    _emit_batch(app, result, out_path)


@attest.command("tag-bars")
@click.argument("bars_path", metavar="BAR_LIST", type=click.Path(dir_okay=False))
@click.option("--token", required=True, metavar="ADDRESS", help="The CollateralToken the bars back.")
@click.option(
    "--vault",
    "vault_ref",
    required=True,
    metavar="VAULT",
    help="The issuer vault whose template authorises the attester.",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the signed documents here.")
@attester_option
@json_option
@pass_app
def tag_bars(
    app: AppContext, bars_path: str, token: str, vault_ref: str, out_path: str | None, attester_uri: str | None
) -> None:
    """Inventory-tag every bar of a bar list (batch mode: one anchoring transaction)."""
    vault = _vault_address(app, vault_ref)
    attester = _attester(app, attester_uri)
    result = _run_batch(
        app,
        lambda progress: steps.tag_bars(
            app.session(), bars_path, token=token, vault=vault, attester=attester, progress=progress
        ),
    )
    _emit_batch(app, result, out_path)


def _run_batch(app: AppContext, run: Callable[[Any], Any]) -> Any:
    from rich.progress import Progress

    if app.json or not app.err.is_terminal:
        return run(None)
    with Progress(console=app.err, transient=True) as bar:
        task = bar.add_task("signing attestations", total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def _emit_batch(app: AppContext, result: batch.BatchResult, out_path: str | None) -> None:
    line = _anchored(result, out_path, f"{result.step} attestation(s)", "attestation")
    app.emit({**result.summary(), "out": out_path}, lambda c: c.print(line))


def _anchored(result: batch.BatchResult, out_path: str | None, what: str, per: str) -> str:
    """Write the anchored documents to ``out_path`` (when given); the line that reports the anchor."""
    if out_path:
        batch.write_documents(result.documents, out_path)
    return (
        f"{result.size} {what} anchored in {result.anchor_tx} (root {result.root}); "
        f"{result.anchor_gas:,} gas = {result.anchor_gas / result.size:,.1f} per {per}"
        + (f"; documents in {out_path}" if out_path else "")
    )


@attest.command("sign-off")
@click.argument("run_id", type=int)
@click.option("--vault", "vault_ref", required=True, metavar="VAULT", help="The issuer vault.")
@attester_option
@json_option
@pass_app
def sign_off(app: AppContext, run_id: int, vault_ref: str, attester_uri: str | None) -> None:
    """A reconciliation badge for a recorded ``custody reconcile`` run."""
    badge = steps.sign_off_reconciliation(
        app.session(), run_id, vault=_vault_address(app, vault_ref), attester=_attester(app, attester_uri)
    )
    app.emit(badge.as_dict(), lambda c: c.print(f"reconciliation badge {badge.uid} in {badge.tx_hash}"))


@attest.command()
@click.argument("vault_ref", metavar="VAULT")
@attester_option
@json_option
@pass_app
def backfill(app: AppContext, vault_ref: str, attester_uri: str | None) -> None:
    """Issue the badges the vault's template asks for that its recorded steps lack."""
    _attester(app, attester_uri)
    issued = auto.backfill(app.session(), vault_ref)
    app.emit(
        {"issued": [b.as_dict() for b in issued]},
        lambda c: c.print(f"{len(issued)} badge(s) issued" + "".join(f"\n  {b.step:18} {b.uid}" for b in issued)),
    )


@attest.command()
@click.argument("vault_ref", metavar="VAULT", required=False)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the anchored documents here.")
@json_option
@pass_app
def anchor(app: AppContext, vault_ref: str | None, out_path: str | None) -> None:
    """Anchor the batched badges waiting for an anchor (of VAULT, else every vault): one EAS timestamp."""
    session = app.session()
    vault = _vault_address(app, vault_ref) if vault_ref else None
    result = batch.anchor_pending(session, vault=vault)
    if result is None:
        what = f"vault {vault_ref}" if vault_ref else "this workspace"
        app.emit({"anchored": None, "out": None}, lambda c: c.print(f"no batched badge of {what} waits for an anchor"))
        return
    line = _anchored(result, out_path, f"batched badge(s) ({result.step})", "badge")
    app.emit({"anchored": result.summary(), "out": out_path}, lambda c: c.print(line))


@attest.command()
@click.argument("uid")
@json_option
@pass_app
def show(app: AppContext, uid: str) -> None:
    """One badge: on chain, or an off-chain document held by this workspace."""
    session = app.session()
    uid_hex = badges.hex32(badges.parse_uid(uid))
    if badges.raw_attestation(session, badges.parse_uid(uid)) is not None:
        data = badges.read(session, uid).as_dict()
    else:
        docs = batch.stored_documents(session, [uid_hex])
        if not docs:
            raise AttestationError(f"{uid_hex} is neither on chain nor an off-chain attestation in this workspace")
        data = docs[0]
    app.emit(data)


@attest.command("list")
@click.option("--vault", "vault_ref", metavar="VAULT")
@click.option("--step", "step_name", type=click.Choice(list(STEPS)))
@json_option
@pass_app
def list_cmd(app: AppContext, vault_ref: str | None, step_name: str | None) -> None:
    """Badges this workspace issued."""
    vault = _vault_address(app, vault_ref) if vault_ref else None
    rows = badges.stored(app.session(), vault=vault, step_name=step_name)
    data = [{k: v for k, v in r.items() if k != "document"} for r in rows]

    def render(c: Console) -> None:
        t = table("step", "mode", "uid", "attester", "reference", "revoked")
        for r in rows:
            mode = "offchain, awaiting anchor" if r["mode"] == "offchain" and not r["batch_root"] else r["mode"]
            t.add_row(r["step"], mode, r["uid"], r["attester"], r["reference"] or "", "yes" if r["revoked_tx"] else "")
        c.print(t)

    app.emit(data, render)


@attest.command()
@click.option("--vault", "vault_ref", metavar="VAULT", help="Every badge about this vault, and its steps lacking one.")
@click.option("--uid", "uids", multiple=True, metavar="UID", help="One badge (repeatable).")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False), help="Off-chain attestation file(s).")
@click.option(
    "--template",
    "templates",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A template the vault used (auditors without this workspace).",
)
@click.option("--from-block", type=int, help="Scan chain events from this block [vault creation, else 0].")
@click.option(
    "--ledger",
    "ledger_bundle",
    type=click.Path(dir_okay=False, exists=True),
    help="An audit bundle (`custody audit export --format bundle`): check ledgerEntry links and unbadged "
    "steps against it [the workspace's ledger].",
)
@click.option("--no-workspace", is_flag=True, help="Use chain data and the given files only, as an outside auditor.")
@json_option
@pass_app
@click.pass_context
def verify(
    ctx: click.Context,
    app: AppContext,
    vault_ref: str | None,
    uids: tuple[str, ...],
    files: tuple[str, ...],
    templates: tuple[str, ...],
    from_block: int | None,
    ledger_bundle: str | None,
    no_workspace: bool,
) -> None:
    """Check badges against the chain and the vault's template; exit code 0 all valid, 2 problems found."""
    if not (vault_ref or uids or files):
        raise InputError("name what to verify: --vault VAULT, --uid UID or --file FILE")
    documents = [d for f in files for d in batch.read_documents(f)]
    ledger = LedgerView.from_bundle(ledger_bundle) if ledger_bundle else None
    verifier = Verifier(
        app.session(),
        templates=templates,
        documents=documents,
        from_block=from_block,
        use_workspace=not no_workspace,
        ledger=ledger,
    )
    reports: list[Report] = []
    if vault_ref:
        reports.append(verifier.verify_vault(_vault_address(app, vault_ref)))
    for uid in uids:
        reports.append(verifier.verify_uid(uid))
    if files and not vault_ref:
        reports.append(verifier.verify_documents(documents))
    ok = all(r.ok for r in reports)
    failures = [f for r in reports for f in r.failures()]
    data = {"ok": ok, "reports": [r.as_dict() for r in reports], "failures": failures}

    def render(c: Console) -> None:
        for r in reports:
            title = f"vault {r.vault}" if r.vault else "attestations"
            t = table("step", "mode", "uid", "attester", "result", title=title)
            for check in r.checks:
                t.add_row(
                    check.step or "?",
                    check.mode,
                    check.uid,
                    check.attester or "?",
                    "[green]valid[/green]" if check.ok else "[red]" + "; ".join(check.problems) + "[/red]",
                )
            c.print(t)
            for m in r.missing:
                c.print(f"[red]missing:[/red] {m['message']}")
            for p in r.problems:
                c.print(f"[red]problem:[/red] {p}")
        c.print(
            "[bold green]all badges verify[/bold green]" if ok else f"[bold red]{len(failures)} failure(s)[/bold red]"
        )

    app.emit(data, render)
    ctx.exit(0 if ok else 2)
