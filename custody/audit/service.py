"""The audit service layer the CLI and the pilot call: keys, heads, proofs, verify, export, index, anchor."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from custody._progress import Progress, counted
from custody.audit import export as audit_export
from custody.audit.anchor import Anchor, anchor_head, anchors
from custody.audit.bundle import export_bundle
from custody.audit.keys import Ed25519LedgerKey, LedgerKey, SignedHead, SignerLedgerKey
from custody.audit.ledger import Ledger
from custody.audit.record import ledger_for
from custody.audit.report import AssetLabel, token_addresses, write_html
from custody.audit.verify import VerifyReport, verify_bundle, verify_ledger
from custody.chain.connection import Chain
from custody.exceptions import AuditError
from custody.session import Session
from custody.signers.registry import SignerContext, open_signer
from custody.store import Store
from custody.vault.decode import token_info
from custody.vault.service import known_tokens
from custody.workspace import Workspace

SIGNER_ENV = "CUSTODY_LEDGER_SIGNER"
FORMATS = ("jsonl", "csv", "html", "bundle")


def audit_dir(workspace: Workspace) -> Path:
    return workspace.home / "audit"


def ledger_key(workspace: Workspace, signer_uri: str | None = None, session: Session | None = None) -> LedgerKey:
    """``--signer URI`` / ``$CUSTODY_LEDGER_SIGNER`` (secp256k1 via the signer registry), else the
    workspace's Ed25519 key (created on first use, 0600)."""
    uri = signer_uri or os.environ.get(SIGNER_ENV)
    if uri:
        if session is not None:
            return SignerLedgerKey(session.signer(uri))

        return SignerLedgerKey(open_signer(uri, SignerContext(keystore_dir=workspace.keystore_dir)))
    return Ed25519LedgerKey.load_or_create(audit_dir(workspace))


def head(store: Store, key_source: Callable[[], LedgerKey], *, sign: bool = True) -> SignedHead | None:
    """The latest signed head; with ``sign``, a new one first when the ledger grew since (``key_source()``
    gives the key, so it is only opened when a signature is needed)."""
    ledger = ledger_for(store)
    latest = ledger.latest_head()
    if sign and ledger.size > 0 and (latest is None or latest.size < ledger.size):
        latest = ledger.sign_head(key_source())
    return latest


def verify(
    *,
    store: Store | None = None,
    session: Session | None = None,
    bundle: str | Path | None = None,
    chain: Chain | None = None,
    keys: list[str] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the workspace ledger (``store``; chain checks on ``chain`` if given) or a ``bundle``.
    ``progress(entries checked, entries)`` is called as the entries are recomputed."""
    trusted = keys or None
    if bundle is not None:
        return verify_bundle(bundle, chain=chain, trusted_keys=trusted, progress=progress)
    store = store if store is not None else session.store  # type: ignore[union-attr]
    return verify_ledger(
        ledger_for(store), chain=chain, anchors=anchors(store), trusted_keys=trusted, progress=progress
    )


def entries(ledger: Ledger) -> list[dict[str, Any]]:
    import orjson

    return [orjson.loads(blob) for _s, _l, blob in ledger.rows()]


def report_tokens(store: Store, rows: list[dict[str, Any]], chain: Chain | None = None) -> dict[str, AssetLabel]:
    """Symbol and decimals of every token the report names: read from the token on ``chain`` when given (what
    the contract says), else as the workspace's vault policies declare it; a token found in neither is left
    out (the report then names it as an unknown token, in base units)."""
    known = known_tokens(store)
    labels: dict[str, AssetLabel] = {}
    for address in sorted(token_addresses(rows)):
        info = token_info(chain, to_checksum_address(address)) if chain is not None else None
        if info is not None:
            labels[address] = AssetLabel(info.symbol, info.decimals)
        elif address in known:
            labels[address] = AssetLabel(*known[address])
    return labels


def export(
    store: Store,
    fmt: str,
    out: str | Path | None,
    *,
    verdict: dict[str, Any] | None = None,
    chain: Chain | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``fmt`` to ``out`` (or return the text for jsonl/csv when ``out`` is None). The HTML report's
    verdict includes the checks against ``chain`` when given, and its token symbols are read from it.
    ``progress(entries written, entries)`` is called as entries go into the output."""

    if fmt not in FORMATS:
        raise AuditError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    ledger = ledger_for(store)
    if fmt == "bundle":
        if out is None:
            raise AuditError("a bundle is a tar.gz file: pass --out PATH")
        manifest = export_bundle(ledger, out, progress=progress)
        return {
            "format": fmt,
            "path": str(out),
            "size": manifest["size"],
            "root": manifest["root"],
            "files": len(manifest["files"]) + 1,
        }
    rows = entries(ledger)
    if fmt == "html":
        if out is None:
            raise AuditError("an HTML report is a file: pass --out PATH")
        verdict = verdict or verify(store=store, chain=chain).as_dict()
        written = write_html(
            out, list(counted(rows, len(rows), progress)), verdict, tokens=report_tokens(store, rows, chain)
        )
        return {"format": fmt, "path": str(written), "entries": len(rows), "verdict": verdict["verdict"]}
    written_rows = counted(rows, len(rows), progress)
    text = "".join(audit_export.jsonl(written_rows)) if fmt == "jsonl" else audit_export.to_csv(written_rows)
    if out is None:
        return {"format": fmt, "text": text, "entries": len(rows)}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return {"format": fmt, "path": str(out), "entries": len(rows)}


def anchor(session: Session, key: LedgerKey | None = None, *, method: str = "ledger_anchor") -> Anchor:
    """Sign a head for the current ledger if needed and publish it on chain."""
    latest = head(session.store, lambda: key or ledger_key(session.workspace, session=session))
    if latest is None:
        raise AuditError("the audit ledger is empty; nothing to anchor")
    return anchor_head(session, latest, method=method)
