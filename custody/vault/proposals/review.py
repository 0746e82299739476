"""What a signer reviews (``tx show``, the offline export): the decoded call, its risks, every hash
recomputed locally and checked against the chain, the signatures, and the latest risk decision."""

from __future__ import annotations

from typing import Any

from custody.risk import gate as risk_gate
from custody.session import Session
from custody.vault.clear import gas_refund_risk, risk_kinds
from custody.vault.decode import decode_safe_call
from custody.vault.oob import oob_view
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.proposals.safe_reads import onchain_hash
from custody.vault.proposals.signing import valid_signatures


def describe(session: Session, proposal: Proposal) -> dict[str, Any]:
    """Everything a signer must see, with hashes recomputed locally and checked against the chain."""
    safe_tx = proposal.safe_tx
    decoded = decode_safe_call(
        session.chain, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe
    )
    remote = onchain_hash(session, safe_tx) if proposal.state is not ProposalState.EXECUTED else None
    valid, owners, threshold = valid_signatures(session, proposal)
    valid_signers = {s.signer for s in valid}
    return {
        "id": proposal.id,
        "vault_id": proposal.vault_id,
        "state": proposal.state.value,
        "description": proposal.description,
        "chain_id": safe_tx.chain_id,
        "safe": safe_tx.safe,
        "to": safe_tx.to,
        "value": str(safe_tx.value),
        "data": "0x" + safe_tx.data.hex(),
        "operation": safe_tx.operation.name,
        "nonce": safe_tx.nonce,
        "safe_tx_gas": str(safe_tx.safe_tx_gas),
        "base_gas": str(safe_tx.base_gas),
        "gas_price": str(safe_tx.gas_price),
        "gas_token": safe_tx.gas_token,
        "refund_receiver": safe_tx.refund_receiver,
        "decoded": decoded.as_dict(),
        "risk_kinds": risk_kinds(safe_tx, decoded),
        "risks": [*decoded.risks, *filter(None, [gas_refund_risk(safe_tx)])],
        "domain_hash": "0x" + safe_tx.domain_separator.hex(),
        "message_hash": "0x" + safe_tx.message_hash.hex(),
        "safe_tx_hash": proposal.safe_tx_hash,
        "onchain_safe_tx_hash": None if remote is None else "0x" + remote.hex(),
        "hash_matches_chain": None if remote is None else remote == safe_tx.safe_tx_hash,
        "threshold": threshold,
        "owners": owners,
        "signatures": [
            {"signer": s.signer, "kind": s.kind, "valid": s.signer in valid_signers, "signature": s.to_hex()}
            for s in proposal.signatures
        ],
        "exec_tx_hash": proposal.exec_tx_hash,
        "exec_block": proposal.exec_block,
        "exec_gas_used": proposal.exec_gas_used,
        "proposer": proposal.proposer,
        "out_of_band": oob_view(session, proposal),
        "risk": risk_view(session, proposal),
    }


def risk_view(session: Session, proposal: Proposal) -> dict[str, Any] | None:
    """The latest recorded risk decision about the proposal (``tx show``; ``risk explain`` has them all)."""
    recorded = risk_gate.decisions(session, proposal.safe_tx_hash)
    if not recorded:
        return None
    latest = recorded[-1]
    return {
        "verdict": latest["verdict"],
        "stage": latest["stage"],
        "seq": latest["seq"],
        "reasons": [r for r in latest["reasons"] if r["severity"] != "info"],
        "decisions": len(recorded),
    }
