"""``custody audit verify``: the whole verdict, for the workspace ledger or an exported bundle.

Verdicts and exit codes: **0** ``ok`` · **2** ``tampered`` (recomputation disagrees with the stored
log, a head, a shipped proof or the bundle manifest; the report names the first bad sequence number)
· **3** ``chain_mismatch`` (an entry disagrees with the chain, an on-chain vault execution has no
entry, an anchor is not on chain as recorded) · **1** any other error (exceptions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody._progress import Progress, counted
from custody.audit.bundle import read_bundle
from custody.audit.chaincheck import ChainReport, check_chain
from custody.audit.integrity import IntegrityResult, Problem, check_rows, first_bad_sequence
from custody.audit.merkle import ConsistencyProof, InclusionProof
from custody.audit.witness import check_anchored
from custody.chain.connection import Chain

if TYPE_CHECKING:
    from custody.audit.bundle import Bundle
    from custody.audit.ledger import Ledger

EXIT_OK, EXIT_TAMPERED, EXIT_CHAIN = 0, 2, 3


@dataclass
class VerifyReport:
    source: str
    integrity: IntegrityResult
    extra: list[Problem]  # bundle-level problems (manifest, shipped proofs) — tampering too
    chain: ChainReport | None

    @property
    def tampered(self) -> bool:
        return not self.integrity.ok or bool(self.extra)

    @property
    def exit_code(self) -> int:
        if self.tampered:
            return EXIT_TAMPERED
        if self.chain is not None and self.chain.problems:
            return EXIT_CHAIN
        return EXIT_OK

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "ok", EXIT_TAMPERED: "tampered", EXIT_CHAIN: "chain_mismatch"}[self.exit_code]

    @property
    def first_bad_sequence(self) -> int | None:
        found = first_bad_sequence([*self.integrity.problems, *self.extra])
        if found is None and self.chain is not None:
            found = first_bad_sequence(self.chain.problems)
        return found

    def as_dict(self) -> dict[str, Any]:
        integrity = self.integrity.as_dict()
        integrity["problems"] = [*integrity["problems"], *[p.as_dict() for p in self.extra]]
        integrity["problem_count"] += len(self.extra)
        return {
            "source": self.source,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "first_bad_sequence": self.first_bad_sequence,
            "size": self.integrity.size,
            "root": self.integrity.root.hex(),
            "integrity": integrity,
            "chain": None if self.chain is None else self.chain.as_dict(),
        }


def verify_ledger(
    ledger: Ledger,
    *,
    chain: Chain | None,
    anchors: Iterable[dict[str, Any]] = (),
    trusted_keys: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify the workspace ledger (and, with a chain, its entries and anchors against that chain).

    A ledger that signs a head in every append transaction must have every entry under a verified head.
    With a chain, every anchor of this log *on the chain* is compared with the log as well (the outside
    witness that detects a rollback of the whole database; see custody.audit.witness)."""

    state = ledger.state()
    heads = ledger.heads()
    integrity = check_rows(
        counted(ledger.rows(), state.size, progress),
        heads,
        log_id=state.log_id,
        trusted_keys=trusted_keys,
        require_signed=getattr(ledger, "signs_every_append", False),
    )
    extra = []
    if state.size != integrity.size and integrity.ok:
        extra.append(
            Problem(
                min(state.size, integrity.size),
                "state_mismatch",
                f"the ledger state says {state.size} entries, the log holds {integrity.size}",
            )
        )
    report = None
    if chain is not None:
        report = check_chain(chain, integrity.interesting, anchors)
        keys = set(trusted_keys) if trusted_keys is not None else {h.key_id for h in heads}
        extra += check_anchored(chain, state.log_id, keys, integrity)
    return VerifyReport("workspace", integrity, extra, report)


def verify_bundle(
    path: str | Path,
    *,
    chain: Chain | None = None,
    trusted_keys: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify an exported bundle offline (and against ``chain`` when given)."""

    bundle = read_bundle(path)
    keys = set(bundle.keys) if trusted_keys is None else set(trusted_keys)
    integrity = check_rows(
        counted(((i, None, blob) for i, blob in enumerate(bundle.entries)), len(bundle.entries), progress),
        bundle.heads,
        log_id=bundle.log_id,
        trusted_keys=keys,
    )
    extra = list(bundle.problems)
    if len(bundle.entries) != bundle.size:
        extra.append(
            Problem(
                min(len(bundle.entries), bundle.size),
                "manifest_size",
                f"the manifest says {bundle.size} entries, the bundle holds {len(bundle.entries)}",
            )
        )
    extra += _shipped_proofs(bundle, integrity)
    report = None if chain is None else check_chain(chain, integrity.interesting, bundle.anchors)
    return VerifyReport(str(path), integrity, extra, report)


def _shipped_proofs(bundle: Bundle, integrity: IntegrityResult) -> list[Problem]:
    """The bundle's own consistency and inclusion proofs must verify against its (signed) heads."""
    problems: list[Problem] = []
    heads = {h.size: h for h in bundle.heads}
    for data in bundle.consistency:
        proof = ConsistencyProof.from_dict(data)
        first, second = heads.get(proof.first), heads.get(proof.second)
        if first is None or second is None or not proof.verify(first.root, second.root):
            problems.append(
                Problem(
                    proof.first,
                    "consistency_proof",
                    f"the shipped consistency proof {proof.first} → {proof.second} does not verify",
                    until=proof.second,
                )
            )
    latest = bundle.heads[-1] if bundle.heads else None
    leaves = integrity.tree.levels[0]
    for data in bundle.inclusion:
        inclusion = InclusionProof.from_dict(data)
        ok = (
            latest is not None
            and inclusion.size == latest.size
            and inclusion.index < len(leaves)
            and inclusion.leaf == leaves[inclusion.index]
            and inclusion.verify(latest.root)
        )
        if not ok:
            problems.append(
                Problem(
                    inclusion.index,
                    "inclusion_proof",
                    f"the shipped inclusion proof of entry {inclusion.index} does not verify",
                )
            )
    return problems
