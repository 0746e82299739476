"""The risk gate on the signing flow: gather a decision's inputs from the session, decide, record the
decision in the audit ledger (linked to the proposal), open a case file per sanctions hit, and refuse
what the verdict does not allow. Called by :mod:`custody.vault.proposals` before a proposal is stored,
before any signer is asked to sign, before an imported signature is stored, and before execution.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from sqlalchemy import Connection

from custody.audit import record as audit
from custody.audit.entries import EntryKind
from custody.audit.lookup import find
from custody.exceptions import RiskDenied, RiskRequirementMissing
from custody.policy.model import Policy
from custody.policy.risk_section import DEFAULT_SETTINGS, RiskSettings
from custody.policy.template import load_policy_text
from custody.risk import anomaly, cases, forest, sanctions
from custody.risk.calls import ETH, transfers, walk
from custody.risk.engine import Prepared, decide
from custody.risk.inputs import Inbound, Movement, RiskInputs
from custody.risk.verdict import Decision, Verdict
from custody.safe.safe_tx import SafeTx
from custody.session import Session
from custody.vault.decode import decode_safe_call
from custody.vault.service import VaultRecord

TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")
IS_SANCTIONED = function_signature_to_4byte_selector("isSanctioned(address)")
BALANCE_OF = function_signature_to_4byte_selector("balanceOf(address)")


def risk_home(session: Session) -> Path:
    return Path(session.workspace.home) / "risk"


def models_dir(session: Session) -> Path:
    return risk_home(session) / "models"


@functools.lru_cache(maxsize=64)
def _parsed(source: str, path: str) -> Policy:
    """A vault's template, parsed once per text (templates are immutable per vault; parsing YAML is slow)."""
    return load_policy_text(source, path)


def policy_of(vault: VaultRecord) -> Policy:
    return _parsed(vault.policy_source, vault.policy_path)


def settings_of(vault: VaultRecord) -> RiskSettings:
    try:
        return policy_of(vault).risk
    except Exception:  # an unreadable template: the strictest settings (the decision will fail closed too)
        return DEFAULT_SETTINGS


# -- history from the ledger ------------------------------------------------------------------------------------
# (chain id, block, tx hash) -> block time: the tx hash keeps a reverted and re-mined block from being reused
_block_times: dict[tuple[int, int, str | None], dt.datetime] = {}


def _block_time(session: Session, block: int | None, tx_hash: str | None = None) -> dt.datetime | None:
    if block is None:
        return None
    key = (session.chain_id, int(block), tx_hash)
    if key not in _block_times:
        found = session.chain.call(session.chain.w3.eth.get_block, int(block))
        _block_times[key] = dt.datetime.fromtimestamp(int(found["timestamp"]), dt.UTC)
    return _block_times[key]


def _movement(to: str, value: int, data: bytes) -> tuple[str, int, str] | None:
    if not data:
        return ETH, value, to_checksum_address(to)
    if data[:4] == TRANSFER and len(data) == 68:
        recipient, amount = abi_decode(["address", "uint256"], data[4:])
        return to_checksum_address(to), int(amount), to_checksum_address(recipient)
    return None


def history(session: Session, safe: str) -> list[Movement]:
    """The vault's executed outbound transfers (execution entries), timed by their blocks."""
    found = []
    for entry in find(session.store, EntryKind.EXECUTION, chain_id=session.chain_id, safe=safe):
        payload = entry.payload
        if not payload.get("success"):
            continue
        moved = _movement(payload["to"], int(payload["value"]), bytes.fromhex(payload["data"][2:]))
        when = _block_time(session, entry.refs.get("block"), entry.refs.get("tx_hash"))
        if moved is None or when is None:
            continue
        asset, amount, destination = moved
        found.append(Movement(when, asset, amount, destination, tuple(payload.get("signers", ()))))
    return found


def inbound(session: Session, safe: str) -> list[Inbound]:
    found = []
    for entry in find(session.store, EntryKind.DEPOSIT_OBSERVED, chain_id=session.chain_id, safe=safe):
        payload = entry.payload
        when = _block_time(session, entry.refs.get("block"), entry.refs.get("tx_hash")) or dt.datetime.now(dt.UTC)
        found.append(Inbound(when, str(payload.get("from")), str(payload.get("asset")), int(payload.get("amount", 0))))
    return found


# -- chain reads -------------------------------------------------------------------------------------------------
def _has_code(session: Session, addresses: Iterable[str]) -> dict[str, bool]:
    w3 = session.chain.w3
    return {a: len(bytes(session.chain.call(w3.eth.get_code, a))) > 0 for a in dict.fromkeys(addresses)}


def _balances(session: Session, safe: str, assets: Iterable[str]) -> dict[str, int]:
    w3 = session.chain.w3
    found = {ETH: int(session.chain.call(w3.eth.get_balance, safe))}
    for asset in dict.fromkeys(assets):
        if asset == ETH:
            continue
        data = BALANCE_OF + abi_encode(["address"], [safe])
        try:
            answer = session.chain.call(w3.eth.call, {"to": asset, "data": "0x" + data.hex()})
            found[asset] = int.from_bytes(bytes(answer)[:32], "big")
        except Exception:
            found[asset] = 0
    return found


def oracle_hits(session: Session, oracle: str, addresses: Iterable[str]) -> frozenset[str]:
    """Addresses a Chainalysis-style oracle flags (``isSanctioned(address) returns (bool)``)."""
    hits = set()
    for address in dict.fromkeys(a for a in addresses if a):
        data = IS_SANCTIONED + abi_encode(["address"], [address])
        answer = bytes(session.chain.call(session.chain.w3.eth.call, {"to": oracle, "data": "0x" + data.hex()}))
        if len(answer) != 32:
            raise sanctions.OracleError(f"sanctions oracle {oracle} gave no isSanctioned answer for {address}")
        if int.from_bytes(answer, "big"):
            hits.add(address.lower())
    return frozenset(hits)


def _known(vault: VaultRecord, settings: RiskSettings) -> dict[str, str]:
    policy = policy_of(vault)
    known: dict[str, str] = {}
    for asset in policy.assets:
        for item in asset.allowlist:
            known[item.address] = item.label or f"{asset.symbol} allowlist"
    if policy.exit is not None:
        for item in policy.exit.custodians:
            known[item.address] = item.label or "fallback custodian"
    known.update(settings.address_book)
    return known


def prepare(
    session: Session,
    vault: VaultRecord,
    safe_tx: SafeTx,
    *,
    stage: str,
    owners: Iterable[str],
    onchain_nonce: int,
    queued_nonces: Iterable[int],
    proposer: str = "",
    signer: str | None = None,
    backend: str | None = None,
    supplied_hash: bytes | None = None,
    onchain_hash: bytes | None = None,
) -> Prepared:
    settings = policy_of(vault).risk
    decoded = decode_safe_call(
        session.chain, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe
    )
    targets = [str(item.call.to) for item in walk(decoded) if item.call.to and not item.in_timelock]
    moves = transfers(decoded)
    incoming = inbound(session, vault.safe)
    block = session.chain.call(session.chain.w3.eth.get_block, "latest")
    inputs = RiskInputs(
        stage=stage,
        safe_tx=safe_tx,
        decoded=decoded,
        now=dt.datetime.fromtimestamp(int(block["timestamp"]), dt.UTC),
        settings=settings,
        owners=tuple(owners),
        proposer=proposer,
        signer=signer,
        signer_backend=backend,
        supplied_hash=supplied_hash,
        onchain_hash=onchain_hash,
        known=_known(vault, settings),
        history=tuple(history(session, vault.safe)),
        inbound=tuple(incoming),
        has_code=_has_code(session, targets),
        queued_nonces=tuple(queued_nonces),
        onchain_nonce=onchain_nonce,
        balances=_balances(session, vault.safe, [m.asset for m in moves]),
        oracle_hits=oracle_hits(
            session, settings.oracle, [*targets, *(m.destination for m in moves), *(i.sender for i in incoming)]
        )
        if settings.oracle
        else frozenset(),
    )
    model = anomaly.load(models_dir(session), vault.name)
    if model is None:  # untrained vault: a baseline of all but the last 24 h, so a burst cannot mask itself
        settled = [m for m in inputs.history if (inputs.now - m.time).total_seconds() > 86400]
        model = anomaly.train(vault.name, settled, now=inputs.now)
    trees = None
    if model.forest_file and model.forest_sha256:
        trees = forest.load(models_dir(session) / model.forest_file, model.forest_sha256)
    return Prepared(inputs, sanctions.active(session.workspace.home), model, trees)


def assess(session: Session, vault: VaultRecord, safe_tx: SafeTx, *, stage: str, **context: Any) -> Decision:
    """Decide (fail-closed, within the template's deadline); the caller records and enforces."""
    digest = "0x" + safe_tx.safe_tx_hash.hex()
    return decide(
        stage, digest, lambda: prepare(session, vault, safe_tx, stage=stage, **context), settings=settings_of(vault)
    )


def record(
    conn: Connection,
    session: Session,
    vault: VaultRecord,
    decision: Decision,
    *,
    proposal_id: int | None,
    actor: str,
    backend: str | None = None,
) -> None:
    """The decision's ledger entry, and a case file per sanctions hit, in the caller's transaction."""
    audit.risk_decision(
        conn,
        session,
        vault=vault.name,
        safe=vault.safe,
        proposal_id=proposal_id,
        decision=decision,
        actor=actor,
        backend=backend,
    )
    for reason in decision.reasons:
        if reason.layer == "sanctions":
            case = cases.open_case(
                risk_home(session),
                vault=vault.name,
                proposal_id=proposal_id,
                decision=decision,
                reason=reason,
                windows=settings_of(vault).reporting_windows,
            )
            audit.risk_case_opened(conn, session, vault=vault.name, case=case)


def refuse_deny(decision: Decision, *, what: str, proposal_id: int | None) -> None:
    if decision.verdict is Verdict.DENY:
        raise RiskDenied(
            f"the risk engine denies this {what} ({decision.stage}): "
            + "; ".join(f"{r.code}: {r.message}" for r in decision.blocking())
            + (
                "; nothing was signed"
                if decision.stage == "sign"
                else "; nothing was sent"
                if decision.stage == "execute"
                else "; the proposal was not opened"
            ),
            hint="a denied transaction can proceed only through the timelock path; `custody risk explain "
            + (str(proposal_id) if proposal_id is not None else decision.safe_tx_hash)
            + "` shows why",
            proposal=proposal_id,
            verdict=decision.verdict.value,
            reasons=decision.codes,
        )


def require_warn_satisfied(
    decision: Decision,
    settings: RiskSettings,
    *,
    confirmed: bool,
    signatures: int,
    threshold: int,
    proposal_id: int,
) -> None:
    """A Warn executes only with what the template requires of it (out-of-band confirmation, extra signers)."""
    if decision.verdict is not Verdict.WARN:
        return
    missing = []
    if settings.warn_out_of_band and not confirmed:
        missing.append("an out-of-band confirmation by someone other than the proposer")
    need = threshold + settings.warn_extra_signers
    if signatures < need:
        missing.append(
            f"{need} owner signatures (threshold {threshold} + {settings.warn_extra_signers}), have {signatures}"
        )
    if missing:
        raise RiskRequirementMissing(
            f"proposal {proposal_id} has a WARN verdict ({', '.join(r.code for r in decision.blocking())}); "
            f"executing it needs {' and '.join(missing)}; nothing was sent",
            hint=f"`custody risk explain {proposal_id}`; `custody tx confirm {proposal_id} …`; more `custody tx sign`",
            proposal=proposal_id,
            reasons=decision.codes,
            missing=missing,
        )


def decisions(session: Session, safe_tx_hash: str) -> list[dict[str, Any]]:
    """Every recorded decision about one safeTxHash, oldest first (what ``risk explain`` shows)."""
    return [
        {"seq": e.seq, "time": e.time, "actor": e.actor, **e.payload}
        for e in find(session.store, EntryKind.RISK_DECISION, chain_id=session.chain_id, safe_tx_hash=safe_tx_hash)
    ]
