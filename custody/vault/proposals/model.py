"""The proposal record: a :class:`SafeTx` with the owner signatures collected for it, and its lifecycle."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import OwnerSignature


class ProposalState(str, enum.Enum):
    PROPOSED = "proposed"
    EXECUTING = "executing"  # execTransaction signed and handed to the node; receipt pending
    EXECUTED = "executed"
    FAILED = "failed"
    DISCARDED = "discarded"  # withdrawn before execution; its nonce is free again


@dataclass(frozen=True)
class Proposal:
    id: int
    vault_id: int
    safe_tx: SafeTx
    description: str
    proposer: str
    state: ProposalState
    signatures: tuple[OwnerSignature, ...]
    exec_tx_hash: str | None
    exec_block: int | None
    exec_gas_used: int | None

    @property
    def safe_tx_hash(self) -> str:
        return "0x" + self.safe_tx.safe_tx_hash.hex()
