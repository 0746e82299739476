"""Helpers for flows the risk engine marks WARN: what a template's Warn band requires, done for real."""

from __future__ import annotations

from custody.vault import oob, proposals

OOB_PASSPHRASE = "risk tests oob passphrase"


def confirm_out_of_band(session, proposal, *, confirmer: str = "risk-officer", issued_by: str = "operator"):
    """A real out-of-band confirmation (printed-code challenge) by someone other than the proposer."""
    if confirmer not in oob.list_confirmers(session.workspace):
        oob.enroll(session.workspace, confirmer, passphrase=OOB_PASSPHRASE)
    code, _expiry = oob.issue_challenge(session, proposal, confirmer, issued_by=issued_by, passphrase=OOB_PASSPHRASE)
    return oob.confirm_with_code(
        session, proposals.get_proposal(session, proposal.id), confirmer, code, passphrase=OOB_PASSPHRASE
    )
