"""Tamper-evident audit ledger: an append-only RFC 9162 Merkle log of every custody step.

Modules: ``entries`` (typed entries, canonical JSON), ``merkle`` (hashing, proofs, verifiers),
``ledger`` (single-writer appends, signed heads, proofs), ``keys`` (Ed25519 / secp256k1 head
signatures), ``record`` (the recording points the services call), ``indexer`` (on-chain history),
``integrity`` / ``chaincheck`` / ``verify`` (the verdict), ``anchor`` (heads on chain), ``bundle`` /
``export`` / ``report`` (what auditors take away), ``service`` (what the CLI and pilot call).
"""

from custody.audit.entries import Entry, EntryKind, canonical_json
from custody.audit.keys import Ed25519LedgerKey, SignedHead, SignerLedgerKey
from custody.audit.ledger import Ledger
from custody.audit.merkle import ConsistencyProof, InclusionProof, MerkleTree, verify_consistency, verify_inclusion

__all__ = [
    "ConsistencyProof",
    "Ed25519LedgerKey",
    "Entry",
    "EntryKind",
    "InclusionProof",
    "Ledger",
    "MerkleTree",
    "SignedHead",
    "SignerLedgerKey",
    "canonical_json",
    "verify_consistency",
    "verify_inclusion",
]
