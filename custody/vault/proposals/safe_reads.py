"""What the vault's Safe says: its nonce, owners, threshold and its own ``getTransactionHash`` (checked
against the locally computed safeTxHash), and whether a proposal was executed on chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from custody.contracts.deploy import read_many
from custody.exceptions import HashMismatch
from custody.safe.safe_tx import SafeTx
from custody.session import Session
from custody.types import Address
from custody.vault.proposals.model import Proposal
from custody.vault.service import get_vault


def safe_contract(session: Session, address: str) -> Any:
    return session.contract("SafeL2", address)


def _hash_call(session: Session, safe_tx: SafeTx) -> Any:
    args = safe_tx.exec_args(b"")[:9] + (safe_tx.nonce,)
    return safe_contract(session, safe_tx.safe).functions.getTransactionHash(*args)


def onchain_hash(session: Session, safe_tx: SafeTx) -> bytes:
    return bytes(session.chain.call(_hash_call(session, safe_tx).call))


@dataclass(frozen=True)
class SafeView:
    """One consistent read of what every approval/execution check needs (one RPC batch)."""

    nonce: int
    owners: list[Address]
    threshold: int
    onchain_hash: bytes


def safe_view(session: Session, safe_tx: SafeTx) -> SafeView:
    safe = safe_contract(session, safe_tx.safe)
    block = session.chain.call(lambda: session.chain.w3.eth.block_number)
    nonce, owners, threshold, digest = read_many(
        session.chain,
        [
            safe.functions.nonce(),
            safe.functions.getOwners(),
            safe.functions.getThreshold(),
            _hash_call(session, safe_tx),
        ],
        block,
    )
    return SafeView(int(nonce), [Address(to_checksum_address(o)) for o in owners], int(threshold), bytes(digest))


def require_hash_match(safe_tx: SafeTx, remote: bytes) -> None:
    if remote != safe_tx.safe_tx_hash:
        raise HashMismatch(
            f"local safeTxHash 0x{safe_tx.safe_tx_hash.hex()} differs from the Safe's 0x{remote.hex()}; refusing to continue",
            local="0x" + safe_tx.safe_tx_hash.hex(),
            onchain="0x" + remote.hex(),
        )


def verify_hash(session: Session, safe_tx: SafeTx) -> bytes:
    """Check the local safeTxHash against the Safe's ``getTransactionHash``; returns it."""
    remote = onchain_hash(session, safe_tx)
    require_hash_match(safe_tx, remote)
    return remote


def safe_nonce(session: Session, safe: str) -> int:
    return int(session.chain.call(safe_contract(session, safe).functions.nonce().call))


def owners_and_threshold(session: Session, safe: str) -> tuple[list[Address], int]:
    contract = safe_contract(session, safe)
    owners = session.chain.call(contract.functions.getOwners().call)
    threshold = session.chain.call(contract.functions.getThreshold().call)
    return list(owners), int(threshold)


EXECUTION_SUCCESS = "0x" + keccak(text="ExecutionSuccess(bytes32,uint256)").hex()


def onchain_execution(session: Session, proposal: Proposal) -> tuple[str, int] | None:
    """(tx hash, block) of the Safe's ``ExecutionSuccess`` for this proposal's safeTxHash, if the chain has one."""
    vault = get_vault(session, proposal.vault_id)
    logs = session.chain.rpc(
        "eth_getLogs",
        [
            {
                "address": proposal.safe_tx.safe,
                "fromBlock": hex(vault.created_block or 0),
                "toBlock": "latest",
                "topics": [EXECUTION_SUCCESS, proposal.safe_tx_hash],
            }
        ],
    )
    if not logs:
        return None
    return str(logs[0]["transactionHash"]), int(logs[0]["blockNumber"], 16)
