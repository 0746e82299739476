"""custody audit head|key|proof|consistency|index|anchor|verify|export|log"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from rich.console import Console

from custody.audit import service
from custody.audit.keys import LedgerKey, public_key_pem
from custody.audit.record import ledger_for
from custody.cli._app import AppContext, json_option, pass_app, table
from custody.cli._progress import progress_for
from custody.exceptions import AuditError

if TYPE_CHECKING:  # the chain layer is imported lazily (fast start)
    from custody.chain.connection import Chain

signer_option = click.option(
    "--signer",
    metavar="URI",
    help="Sign heads with this signer URI (secp256k1) [$CUSTODY_LEDGER_SIGNER, else the workspace Ed25519 key].",
)


@click.group("audit")
def audit() -> None:
    """Tamper-evident audit ledger: signed heads, proofs, indexing, anchoring, verification, exports."""


def _connect(rpc: str) -> Chain:
    from custody.chain.connection import connect

    return connect(rpc)


def _workspace_chain(app: AppContext, rpc: str) -> Chain:
    """The endpoint ``--rpc`` of a command on the workspace's ledger: refused (:class:`ForeignChain`, exit 5)
    unless it is the chain the workspace recorded for its chain id."""
    from custody.binding import check_binding

    chain = _connect(rpc)
    check_binding(chain, app.workspace.store, where=str(app.workspace.home))
    return chain


def _key(app: AppContext, signer: str | None) -> Callable[[], LedgerKey]:
    return lambda: service.ledger_key(app.workspace, signer, app.session() if signer else None)


@audit.command("head")
@signer_option
@click.option("--no-sign", is_flag=True, help="Only print the latest head; never sign a new one.")
@json_option
@pass_app
def head_cmd(app: AppContext, signer: str | None, no_sign: bool) -> None:
    """Print the latest signed tree head (signing a new one first when the ledger grew since)."""
    head = service.head(app.workspace.store, _key(app, signer), sign=not no_sign)
    size = ledger_for(app.workspace.store).size
    if head is None:
        raise AuditError("the audit ledger is empty; there is no tree head yet")
    data = {**head.as_dict(), "ledger_size": size, "current": head.size == size}

    def render(c: Console) -> None:
        c.print(
            f"[bold]tree head[/bold] size {head.size} (ledger {size}{'' if head.size == size else ', newer entries unsigned'})"
        )
        c.print(
            f"root      {head.root.hex()}\ntime      {head.time}\nkey       {head.key_id}\nsignature {head.signature.hex()}"
        )

    app.emit(data, render)


@audit.command("key")
@signer_option
@json_option
@pass_app
def key_cmd(app: AppContext, signer: str | None) -> None:
    """Show the ledger key's id and public key (created on first use), for auditors to pin."""
    key = _key(app, signer)()
    data = {"key_id": key.key_id, "public_key_pem": public_key_pem(key.key_id)}
    app.emit(data, lambda c: c.print(f"{key.key_id}\n{data['public_key_pem'] or ''}".rstrip()))


@audit.command("proof")
@click.option("--entry", "seq", type=int, required=True, help="Sequence number of the entry.")
@click.option("--head", "size", type=int, help="Size of the signed head to prove against [the latest].")
@json_option
@pass_app
def proof_cmd(app: AppContext, seq: int, size: int | None) -> None:
    """RFC 9162 inclusion proof of an entry in a signed tree head."""
    ledger = ledger_for(app.workspace.store)
    head = ledger.head_at(size) if size is not None else ledger.latest_head()
    if head is None:
        raise AuditError("no signed tree head yet; run `custody audit head`")
    proof = ledger.inclusion_proof(seq, head.size)
    data = {
        **proof.as_dict(),
        "root": head.root.hex(),
        "verified": proof.verify(head.root),
        "entry": ledger.entry(seq).as_dict(),
    }
    app.emit(
        data,
        lambda c: c.print(
            f"entry {seq} in head of size {head.size}: leaf {proof.leaf.hex()}, "
            f"{len(proof.path)} hashes, verified={data['verified']}\n" + "\n".join(p.hex() for p in proof.path)
        ),
    )


@audit.command("consistency")
@click.option("--from", "first", type=int, required=True, help="Size of the older head.")
@click.option("--to", "second", type=int, required=True, help="Size of the newer head.")
@json_option
@pass_app
def consistency_cmd(app: AppContext, first: int, second: int) -> None:
    """RFC 9162 consistency proof between two signed heads (the older is a prefix of the newer)."""
    ledger = ledger_for(app.workspace.store)
    old, new = ledger.head_at(first), ledger.head_at(second)
    proof = ledger.consistency_proof(first, second)
    data = {
        **proof.as_dict(),
        "first_root": old.root.hex(),
        "second_root": new.root.hex(),
        "verified": proof.verify(old.root, new.root),
    }
    app.emit(
        data,
        lambda c: c.print(
            f"{first} → {second}: {len(proof.path)} hashes, verified={data['verified']}\n"
            + "\n".join(p.hex() for p in proof.path)
        ),
    )


@audit.command("index")
@click.argument("vaults", nargs=-1)
@json_option
@pass_app
def index_cmd(app: AppContext, vaults: tuple[str, ...]) -> None:
    """Index the vaults' on-chain history (executions, deposits, guard/timelock events) into the ledger."""
    from custody.audit.indexer import index_vaults

    session = app.session()
    with progress_for(app, "indexing blocks") as progress:
        results = [r.as_dict() for r in index_vaults(session, list(vaults) or None, progress=progress)]

    def render(c: Console) -> None:
        t = table("vault", "blocks", "logs", "entries", "corrections", "reorg")
        for r in results:
            t.add_row(
                r["vault"],
                f"{r['from_block']}..{r['to_block']}",
                str(r["logs"]),
                str(r["entries"]),
                str(r["corrections"]),
                "" if r["reorg"] is None else f"from block {r['reorg']['first_invalid_block']}",
            )
        c.print(t)

    app.emit({"vaults": results, "ledger_size": ledger_for(app.workspace.store).size}, render)


@audit.command("anchor")
@signer_option
@click.option(
    "--method",
    type=click.Choice(["ledger_anchor", "eas_timestamp"]),
    default="ledger_anchor",
    show_default=True,
    help="LedgerAnchor.anchor (head + signature in an event) or EAS.timestamp of its hash.",
)
@json_option
@pass_app
def anchor_cmd(app: AppContext, signer: str | None, method: str) -> None:
    """Publish the current signed tree head on chain (LedgerAnchor.anchor or an EAS timestamp)."""
    session = app.session()
    done = service.anchor(session, service.ledger_key(session.workspace, signer, session), method=method)
    data = done.as_dict()
    app.emit(
        data,
        lambda c: c.print(
            f"anchored head of size {done.head.size} (root {done.head.root.hex()}) in "
            f"{done.tx_hash}, block {done.block_number}, contract {done.contract}"
        ),
    )


@audit.command("verify")
@click.option("--bundle", type=click.Path(dir_okay=False, exists=True), help="Verify this exported bundle offline.")
@click.option("--rpc", "rpc", metavar="URL", help="Check entries against this chain (bundle: only with --rpc).")
@click.option("--no-chain", is_flag=True, help="Workspace ledger: skip the checks against the chain.")
@click.option(
    "--key", "keys", multiple=True, metavar="KEY_ID", help="Trust only heads signed by this key (repeatable)."
)
@json_option
@pass_app
@click.pass_context
def verify_cmd(
    ctx: click.Context, app: AppContext, bundle: str | None, rpc: str | None, no_chain: bool, keys: tuple[str, ...]
) -> None:
    """Recompute the tree, check every head and their consistency, and the entries against the chain.

    Exit codes: 0 ok, 2 tampered (the report names the first bad sequence number), 3 chain mismatch or
    on-chain executions missing from the ledger, 1 any other error.
    """
    chain = None
    if rpc is not None:
        # the workspace's ledger only against the chain it was written on; a bundle belongs to no workspace
        chain = _workspace_chain(app, rpc) if bundle is None else _connect(rpc)
    elif bundle is None and not no_chain:
        chain = app.session().chain
    with progress_for(app, "checking entries") as progress:
        report = service.verify(
            store=None if bundle else app.workspace.store,
            bundle=bundle,
            chain=chain,
            keys=list(keys),
            progress=progress,
        )
    data = report.as_dict()

    def render(c: Console) -> None:
        style = "green" if report.exit_code == 0 else "red"
        c.print(
            f"[bold {style}]{report.verdict}[/bold {style}] — {report.integrity.size} entries, root {data['root']}, "
            f"{len(report.integrity.heads)} signed head(s), keys {', '.join(report.integrity.keys) or 'none'}"
        )
        if data["chain"] is not None:
            ch = data["chain"]
            c.print(
                f"chain {ch['chain_id']}: {ch['executions_checked']} recorded executions checked, "
                f"{ch['onchain_executions']} on-chain executions found, {ch['anchors_checked']} anchors checked"
            )
        if report.first_bad_sequence is not None:
            c.print(f"first bad sequence number: {report.first_bad_sequence}")
        problems = data["integrity"]["problems"] + (data["chain"] or {}).get("problems", [])
        for p in problems[:20]:
            c.print(f"  [{p['code']}] {p['message']}")

    app.emit(data, render)
    ctx.exit(report.exit_code)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(service.FORMATS), required=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Output file [stdout for jsonl/csv].")
@click.option("--rpc", "rpc", metavar="URL", help="HTML: check entries and read token symbols on this chain.")
@click.option("--no-chain", is_flag=True, help="HTML: no chain (offline verdict; symbols from vault policies).")
@json_option
@pass_app
def export_cmd(app: AppContext, fmt: str, out: str | None, rpc: str | None, no_chain: bool) -> None:
    """Export the ledger: JSONL / CSV (redacted), an HTML report (docs/audit-report.md), or a verifiable
    bundle (tar.gz). The HTML report checks the entries against the workspace chain (or --rpc) and reads token
    symbols and decimals from it, unless --no-chain."""
    chain = None
    if fmt == "html" and rpc is not None:
        chain = _workspace_chain(app, rpc)
    elif fmt == "html" and not no_chain:
        chain = app.session().chain
    with progress_for(app, "writing entries") as progress:
        result = service.export(app.workspace.store, fmt, out, chain=chain, progress=progress)
    if out is None and "text" in result and not app.json:
        click.echo(result["text"], nl=False)
        return
    app.emit(result, lambda c: c.print(f"wrote {result['format']} to {result['path']}"))


@audit.command("log")
@click.option("--last", type=int, default=20, show_default=True, help="How many of the newest entries.")
@json_option
@pass_app
def log_cmd(app: AppContext, last: int) -> None:
    """The newest ledger entries."""
    ledger = ledger_for(app.workspace.store)
    size = ledger.size
    shown = [e.as_dict() for e in ledger.entries(max(0, size - last), size)]

    def render(c: Console) -> None:
        t = table("seq", "time", "kind", "actor", "vault", "refs")
        for e in shown:
            t.add_row(
                str(e["seq"]),
                e["time"],
                e["kind"],
                e["actor"],
                e["vault"] or "",
                ", ".join(f"{k}={v}" for k, v in sorted(e["refs"].items())),
            )
        c.print(t)

    app.emit({"size": size, "entries": shown}, render)
