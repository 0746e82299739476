"""The pilot's risk-engine section: a desk vault builds a short history with its usual counterparty,
then three cases — a transfer to a poisoned lookalike denied, a sanctioned destination denied with its
case file, and an off-hours transfer warned and completed with an out-of-band confirmation and one
more signer. Runs last: it moves the chain clock to a Saturday night."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from custody.audit import service as audit_service
from custody.chain.connection import next_utc_slot
from custody.exceptions import ChainError, RiskDenied, RiskRequirementMissing
from custody.risk import sanctions
from custody.risk import service as risk_service
from custody.risk.evaluation import lookalike_of
from custody.session import Session
from custody.signers.local import anvil_signer
from custody.vault import oob, proposals, service

COUNTERPARTY = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
HISTORY = 10
CONFIRMER = "risk-desk-officer"

TEMPLATE = f"""# Pilot desk vault: any destination (hot class), screened by the risk engine before every signature.
version: 1
name: risk-desk
risk_class: hot
owners:
  threshold: 1
  signers:
    - address: {anvil_signer(1).address}
      label: desk-1
    - address: {anvil_signer(2).address}
      label: desk-2
  controls: [SOC2-CC6.1]
timelock:
  delay: 1h
  operations: [owners, threshold, modules, guard, fallback_handler, policy]
  controls: [SOC2-CC8.1]
assets:
  - asset: ETH
    per_tx_limit: "5"
    daily_limit: "100"
    controls: [SOC2-CC6.1]
risk:
  timeout_ms: 2000
  warn:
    out_of_band: true
    extra_signers: 1
  address_book:
    - address: {COUNTERPARTY}
      label: exchange-settlement
  anomaly:
    min_history: {HISTORY}
  reporting_windows:
    US: 30d
    EU: 14d
"""


def _transfer(session: Session, vault: str, to: str, amount: str, signers: list[Any]) -> proposals.Proposal:
    proposal = proposals.propose_transfer(session, vault, to=to, amount=amount, proposer=signers[0].address)
    for signer in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), signer)
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    return proposal


def _denied(session: Session, vault: str, to: str) -> dict[str, Any]:
    try:
        proposals.propose_transfer(session, vault, to=to, amount="1", proposer=anvil_signer(1).address)
    except RiskDenied as refused:
        decision = risk_service.explain(session, str(refused.details["proposal"]))["decisions"][-1]
        return {
            "proposal": refused.details["proposal"],
            "to": to,
            "verdict": decision["verdict"],
            "reasons": [r["code"] for r in decision["reasons"] if r["severity"] == "deny"],
            "refusal": refused.message,
            "ledger_entry": decision["seq"],
        }
    raise ChainError(f"pilot: the transfer to {to} was not denied by the risk engine")


def risk_section(
    step: Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]],
    session: Session,
    folder: Path,
    *,
    oob_passphrase: str,
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "risk-desk.yaml"
    template.write_text(TEMPLATE)

    def setup() -> dict[str, Any]:
        record, _facts = service.create_vault(session, template)
        session.send(to=record.safe, value=30 * 10**18, what="funding the risk desk vault")
        for _ in range(HISTORY):
            _transfer(session, record.name, COUNTERPARTY, "0.5", [anvil_signer(1)])
        trained = risk_service.train(session, record.name)
        return {"vault": record.name, "safe": record.safe, "history": HISTORY, "model": trained}

    desk = step(f"risk desk vault: {HISTORY} ordinary transfers to its counterparty, baseline trained", setup)
    poisoned = lookalike_of(COUNTERPARTY, random.Random(14), prefix=4, suffix=4)
    lookalike = step(
        "risk engine: a transfer to a poisoned lookalike of the counterparty is denied",
        lambda: _denied(session, desk["vault"], poisoned),
    )
    listed = to_checksum_address(sorted(sanctions.active(session.workspace.home).addresses)[0])

    def sanctioned() -> dict[str, Any]:
        found = _denied(session, desk["vault"], listed)
        (case,) = [c for c in risk_service.list_cases(session) if c["proposal"] == found["proposal"]]
        exported = risk_service.export_cases(session, str(folder / "cases.json"))
        return {**found, "case": case, "cases_file": exported["file"]}

    sanctioned_case = step("risk engine: a sanctioned destination is denied and a case file opened", sanctioned)

    def off_hours() -> dict[str, Any]:
        night = next_utc_slot(session.chain.latest_timestamp(), weekday=5, hour=3, min_ahead=0)
        session.chain.set_next_timestamp(night)
        session.chain.mine()
        proposal = proposals.propose_transfer(
            session, desk["vault"], to=COUNTERPARTY, amount="0.5", proposer=anvil_signer(1).address
        )
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
        try:
            proposals.execute(session, proposals.get_proposal(session, proposal.id))
        except RiskRequirementMissing as refused:
            refusal = refused.message
        else:
            raise ChainError("pilot: the off-hours transfer executed without what its WARN requires")
        oob.enroll(session.workspace, CONFIRMER, passphrase=oob_passphrase)
        code, _expires = oob.issue_challenge(
            session, proposal, CONFIRMER, issued_by=anvil_signer(1).address, passphrase=oob_passphrase
        )
        confirmed = oob.confirm_with_code(
            session, proposals.get_proposal(session, proposal.id), CONFIRMER, code, passphrase=oob_passphrase
        )
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(2))
        receipt = proposals.execute(session, proposals.get_proposal(session, proposal.id))
        decisions = risk_service.explain(session, str(proposal.id))["decisions"]
        return {
            "proposal": proposal.id,
            "verdicts": [f"{d['stage']}:{d['verdict']}" for d in decisions],
            "reasons": sorted({r["code"] for d in decisions for r in d["reasons"] if r["severity"] == "warn"}),
            "refused_without_requirements": refusal,
            "confirmer": confirmed.confirmer,
            "tx_hash": receipt.tx_hash,
        }

    warned = step("risk engine: an off-hours transfer is warned, confirmed out of band, co-signed, executed", off_hours)
    report = audit_service.verify(store=session.store, chain=session.chain)
    if report.exit_code != 0:
        raise ChainError(f"pilot: the ledger with the risk decisions does not verify ({report.verdict})")
    return {
        "desk": desk,
        "lookalike": lookalike,
        "sanctioned": sanctioned_case,
        "off_hours": warned,
        "ledger_verified": report.verdict,
    }
