"""The composition root: which domain reacts to which event (custody/events.py).

Loaded by the event bus on the first ``publish``; this is the only module that calls ``subscribe``
(tests/test_events.py). Order matters where two handlers react to one event: a proposal's timelock
operation is brought up to date before its execution badge is issued, as before the bus existed.
"""

from __future__ import annotations

from custody import events
from custody.attest import auto as attest_auto
from custody.audit import record as audit_record
from custody.vault import timelock_ops


def _record_infrastructure(event: events.InfrastructureDeployed) -> None:
    audit_record.infrastructure_deployed(event.conn, event.store, event.chain_id, event.deployed, actor=event.actor)


def _attest_approval(event: events.ApprovalSigned) -> None:
    attest_auto.after_approval(event.session, event.safe, event.safe_tx_hash, event.signer)


def _attest_confirmation(event: events.ConfirmationRecorded) -> None:
    attest_auto.after_confirmation(event.session, event.safe, event.safe_tx_hash, event.confirmer, event.method)


def _update_timelock_operation(event: events.ProposalExecuted) -> None:
    timelock_ops.after_proposal_executed(event.session, event.proposal_id, receipt=event.receipt)


def _attest_execution(event: events.ProposalExecuted) -> None:
    attest_auto.after_execution(event.session, event.proposal_id)


def install() -> None:
    """Subscribe every cross-domain reaction (called once, by the bus)."""
    events.subscribe(events.InfrastructureDeployed, _record_infrastructure)
    events.subscribe(events.ApprovalSigned, _attest_approval)
    events.subscribe(events.ConfirmationRecorded, _attest_confirmation)
    events.subscribe(events.ProposalExecuted, _update_timelock_operation)
    events.subscribe(events.ProposalExecuted, _attest_execution)
