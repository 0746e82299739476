"""Verifying badges the way an auditor must: from chain data, the vault's templates and attestation files.

For a vault, :func:`verify_vault`

1. rebuilds which template was in force when: the Safe's ``ChangedGuard`` events, each guard's
   ``TEMPLATE_HASH`` (an immutable), matched to template texts by keccak256 (the workspace's history,
   or files the auditor passes) — so "who may attest" is read from the template the chain anchors;
2. finds every custody badge about the vault: EAS ``Attested`` events for the custody schemas (read
   back with ``getAttestation``) and off-chain attestation documents (workspace or files);
3. checks each badge: custody schema, attester authorised for that step by the template in force at
   the badge's time, not revoked, not expired, every ``refUID`` / ``approvals`` link resolving to a
   valid badge of the same vault, and what it refers to matching the chain — an execution badge's tx
   must carry the Safe's ``ExecutionSuccess`` for that safeTxHash; an approval's signer must appear
   among the executed transaction's signatures (or, before execution, in a stored valid signature);
   off-chain documents must carry a valid EIP-712 signature by their claimed attester, the EAS UID,
   and a Merkle proof to a root EAS timestamped no earlier than the attestation's time;
4. lists custody steps that lack a valid badge although the template in force asked for one:
   executions and their signers (from the Safe's events) and the approval / out-of-band confirmation /
   execution entries of the audit ledger (the workspace's, or an exported bundle).

Steps 1 and 2 read the chain and the files (:mod:`custody.attest.evidence`); this module judges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address

from custody.attest import merkle
from custody.attest.badges import (
    ZERO32,
    Badge,
    _badge_from_tuple,
    context,
    hex32,
    parse_uid,
)
from custody.attest.batch import stored_documents
from custody.attest.evidence import (
    Authority,
    Execution,
    authority,
    executions,
    known_templates,
    offchain_badge,
    offchain_message,
    onchain_badges,
)
from custody.attest.ledger_link import LINKED_STEPS, STEP_KINDS, LedgerView, mismatch
from custody.attest.schemas import STEPS
from custody.attest.typed import OFFCHAIN_ATTEST_FIELDS, OFFCHAIN_DOMAIN_NAME, OffchainMessage
from custody.contracts.deploy import codehash
from custody.exceptions import AttestationError, InputError, SignatureError, UnknownAttestation
from custody.safe.signatures import verify_owner_signature
from custody.session import Session
from custody.signers.base import typed_data_digest
from custody.signers.ecdsa import EcdsaSignature
from custody.store import oob_confirmations, proposals, signatures, vaults
from custody.types import Address


# -- report ------------------------------------------------------------------------------------------
@dataclass
class BadgeCheck:
    uid: str
    step: str | None
    mode: str
    attester: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    badge: Badge | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "step": self.step,
            "mode": self.mode,
            "attester": self.attester,
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "badge": None if self.badge is None else self.badge.as_dict(),
        }


@dataclass
class Report:
    vault: str | None
    checks: list[BadgeCheck] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)  # custody steps without a valid badge
    templates: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the inputs (templates not available, …)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing and all(c.ok for c in self.checks)

    def failures(self) -> list[str]:
        out = list(self.problems)
        for c in self.checks:
            out += [f"badge {c.uid} ({c.step or '?'}): {p}" for p in c.problems]
        out += [m["message"] for m in self.missing]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.vault,
            "ok": self.ok,
            "badges": [c.as_dict() for c in self.checks],
            "missing": self.missing,
            "templates": self.templates,
            "problems": self.problems,
            "summary": {
                "badges": len(self.checks),
                "valid": sum(c.ok for c in self.checks),
                "invalid": sum(not c.ok for c in self.checks),
                "missing": len(self.missing),
            },
        }


# -- the verifier ------------------------------------------------------------------------------------------
class Verifier:
    def __init__(
        self,
        session: Session,
        *,
        templates: Iterable[str | Path] = (),
        documents: Iterable[dict[str, Any]] = (),
        from_block: int | None = None,
        use_workspace: bool = True,
        ledger: LedgerView | None = None,
    ) -> None:
        """``ledger``: the audit ledger to check ``ledgerEntry`` links against and to find unbadged steps
        in, and whose off-chain attestations to add (an exported bundle for auditors); by default the
        workspace's own ledger when ``use_workspace``."""
        self.session = session
        self.ledger = ledger if ledger is not None else (LedgerView.from_workspace(session) if use_workspace else None)
        self.ctx = context(session)
        self.template_files = list(templates)
        self.use_workspace = use_workspace
        self.documents = (
            list(documents)
            + (stored_documents(session) if use_workspace else [])
            + (list(self.ledger.documents) if self.ledger is not None else [])
        )
        self.from_block = from_block
        self.now = session.chain.latest_timestamp()
        self._authorities: dict[str, Authority] = {}
        self._executions: dict[str, list[Execution]] = {}
        self._offchain: dict[str, tuple[Badge | None, dict[str, Any]]] = {}
        for doc in self.documents:
            badge, _ = offchain_badge(doc)
            uid = badge.uid if badge else str((doc.get("sig") or {}).get("uid"))
            self._offchain.setdefault(uid, (badge, doc))
        self._onchain_cache: dict[str, Badge | None] = {}

    # -- lookups --
    def _start(self, vault: str) -> int:
        if self.from_block is not None:
            return self.from_block
        with self.session.store.connect() as conn:
            block = conn.execute(
                sa.select(vaults.c.created_block).where(
                    vaults.c.chain_id == self.session.chain_id, sa.func.lower(vaults.c.safe) == vault.lower()
                )
            ).scalar()
        return int(block) if block is not None and self.use_workspace else 0

    def authority(self, vault: str) -> Authority:
        key = vault.lower()
        if key not in self._authorities:
            templates = known_templates(self.session if self.use_workspace else None, vault, self.template_files)
            self._authorities[key] = authority(self.session, vault, templates, self._start(vault))
        return self._authorities[key]

    def executions(self, vault: str) -> list[Execution]:
        key = vault.lower()
        if key not in self._executions:
            self._executions[key] = executions(self.session, vault, self._start(vault))
        return self._executions[key]

    def onchain(self, uid: str) -> Badge | None:
        if uid not in self._onchain_cache:
            raw = self.session.chain.call(self.ctx.contract.functions.getAttestation(bytes.fromhex(uid[2:])).call)
            if bytes(raw[0]) == ZERO32:
                self._onchain_cache[uid] = None
            else:
                try:
                    self._onchain_cache[uid] = _badge_from_tuple(raw)
                except AttestationError:
                    self._onchain_cache[uid] = None
        return self._onchain_cache[uid]

    def linked(self, uid: str) -> tuple[Badge | None, str | None]:
        """A referenced badge (on chain first, then the known off-chain documents) and why it is unusable."""
        badge = self.onchain(uid)
        if badge is not None:
            if badge.revocation_time:
                return badge, f"was revoked at {badge.revocation_time}"
            if badge.expiration and badge.expiration <= self.now:
                return badge, f"expired at {badge.expiration}"
            return badge, None
        found = self._offchain.get(uid)
        if found is not None and found[0] is not None:
            check = self.check_offchain(found[1])
            return found[0], None if check.ok else "is not valid: " + "; ".join(check.problems)
        return None, "is not a known attestation (not on chain, not among the given documents)"

    # -- checks --
    def _common(self, check: BadgeCheck, badge: Badge) -> None:
        if badge.expiration and badge.expiration <= self.now:
            check.problems.append(f"expired at {badge.expiration} (chain time {self.now})")
        vault = badge.vault
        if vault is None:
            check.problems.append(f"names no vault, so no vault template authorises attester {badge.attester}")
            return
        auth = self.authority(vault)
        template_hash, policy, guard = auth.at(badge.time)
        if guard is None:
            check.problems.append(f"was made at {badge.time}, before vault {vault} had a guard-anchored template")
        elif policy is None:
            check.problems.append(
                f"vault {vault}'s template in force at {badge.time} ({template_hash or 'none: guard ' + guard}) is not "
                "available, so the attester's authorisation cannot be checked"
            )
        elif policy.attestations is None or not policy.attestations.authorised(badge.attester, badge.step):
            check.problems.append(
                f"attester {badge.attester} is not authorised for {badge.step} badges by vault {vault}'s template "
                f"{policy.name} ({template_hash}) in force at that time"
            )
        if badge.ref_uid != hex32(ZERO32):
            ref, why = self.linked(badge.ref_uid)
            if why:
                check.problems.append(f"its refUID {badge.ref_uid} {why}")
            elif ref is not None and ref.vault not in (None, vault):
                check.problems.append(f"its refUID {badge.ref_uid} is a badge of another vault ({ref.vault})")
        self._references(check, badge, vault)
        self._ledger_link(check, badge)

    def _ledger_link(self, check: BadgeCheck, badge: Badge) -> None:
        if badge.step not in STEP_KINDS or "ledgerEntry" not in badge.fields:
            return
        leaf = bytes(badge.fields["ledgerEntry"])
        if leaf == ZERO32:
            check.notes.append("cites no audit-ledger entry (ledgerEntry is zero)")
            return
        if self.ledger is None:
            check.notes.append(f"ledger entry {hex32(leaf)} not checked: no ledger given (--ledger BUNDLE)")
            return
        entry = self.ledger.get(leaf)
        if entry is None:
            check.problems.append(f"its ledgerEntry {hex32(leaf)} is not an entry of the {self.ledger.source}")
            return
        why = mismatch(badge.step, badge.fields, entry)
        if why:
            check.problems.append(f"its ledger entry #{entry.get('seq')} {why}")
        elif entry.get("seq") in self.ledger.superseded:
            check.problems.append(f"its ledger entry #{entry.get('seq')} was superseded by a correction (reorg)")
        else:
            check.notes.append(f"recorded in the {self.ledger.source} as entry #{entry.get('seq')}")

    def _references(self, check: BadgeCheck, badge: Badge, vault: str) -> None:
        """What ``badge`` (a badge of ``vault``) refers to, against the chain and the workspace."""
        f = badge.fields
        if badge.step == "kyc":
            if Address(to_checksum_address(f["subject"])) != badge.recipient:
                check.problems.append(f"KYC subject {f['subject']} is not the badge's recipient {badge.recipient}")
        elif badge.step == "approval":
            self._check_approval(check, badge, vault)
        elif badge.step == "oob_confirmation":
            self._check_confirmation(check, badge)
        elif badge.step == "execution":
            self._check_execution(check, badge, vault)
        elif badge.step in ("inventory_tag", "reconciliation") and codehash(self.session.chain, f["token"]) is None:
            check.problems.append(f"token {f['token']} has no code on chain {self.session.chain_id}")

    def _check_approval(self, check: BadgeCheck, badge: Badge, vault: str) -> None:
        f = badge.fields
        safe_tx_hash, signer = hex32(f["safeTxHash"]), Address(to_checksum_address(f["signer"]))
        if signer != badge.recipient:
            check.problems.append(f"approval signer {signer} is not the badge's recipient {badge.recipient}")
        executed = [e for e in self.executions(vault) if e.safe_tx_hash == safe_tx_hash]
        if executed and signer in executed[0].signers:
            check.notes.append(f"signer's signature is in execution {executed[0].tx_hash}")
            return
        if self.use_workspace and self._stored_signature(safe_tx_hash, signer):
            check.notes.append(
                "signer's valid signature is held by the workspace (not among the execution's signatures)"
            )
            return
        where = f"execution {executed[0].tx_hash}" if executed else "any execution of the vault"
        check.problems.append(f"no evidence that {signer} signed {safe_tx_hash}: not among the signatures of {where}")

    def _stored_signature(self, safe_tx_hash: str, signer: str) -> bool:
        with self.session.store.connect() as conn:
            blob = conn.execute(
                sa.select(signatures.c.signature)
                .join(proposals, proposals.c.id == signatures.c.proposal_id)
                .where(proposals.c.safe_tx_hash == safe_tx_hash, signatures.c.signer == signer)
            ).scalar()
        if blob is None:
            return False
        try:
            return verify_owner_signature(bytes.fromhex(blob[2:]), bytes.fromhex(safe_tx_hash[2:])).signer == signer
        except SignatureError:
            return False

    def _check_confirmation(self, check: BadgeCheck, badge: Badge) -> None:
        f = badge.fields
        if not self.use_workspace:
            check.notes.append("out-of-band confirmations are off-chain facts: checked against the workspace only")
            return
        with self.session.store.connect() as conn:
            row = conn.execute(
                sa.select(oob_confirmations.c.method).where(
                    oob_confirmations.c.safe_tx_hash == hex32(f["safeTxHash"]),
                    oob_confirmations.c.confirmer == f["confirmer"],
                )
            ).first()
        if row is None:
            check.problems.append(
                f"the workspace holds no out-of-band confirmation by {f['confirmer']!r} for {hex32(f['safeTxHash'])}"
            )
        elif row.method != f["method"]:
            check.problems.append(f"the confirmation was given by {row.method}, the badge says {f['method']}")

    def _check_execution(self, check: BadgeCheck, badge: Badge, vault: str) -> None:
        f = badge.fields
        safe_tx_hash, tx_hash = hex32(f["safeTxHash"]), hex32(f["txHash"])
        match = [e for e in self.executions(vault) if e.safe_tx_hash == safe_tx_hash]
        if not match:
            check.problems.append(f"vault {badge.vault} never executed {safe_tx_hash} (no ExecutionSuccess)")
        elif match[0].tx_hash != tx_hash:
            check.problems.append(f"{safe_tx_hash} was executed in {match[0].tx_hash}, not in {tx_hash}")
        approvals = [hex32(u) for u in f["approvals"]]
        if badge.ref_uid != hex32(ZERO32) and badge.ref_uid not in approvals:
            check.problems.append(f"its refUID {badge.ref_uid} is not among its listed approvals")
        for uid in approvals:
            if uid == badge.ref_uid:
                continue  # already checked as the refUID
            ref, why = self.linked(uid)
            if why:
                check.problems.append(f"listed approval {uid} {why}")
        for uid in approvals:
            ref, _ = self.linked(uid)
            if ref is None:
                continue
            if ref.step not in ("approval", "oob_confirmation"):
                check.problems.append(f"listed approval {uid} is a {ref.step} badge")
            elif hex32(ref.fields["safeTxHash"]) != safe_tx_hash:
                check.problems.append(
                    f"listed approval {uid} is about {hex32(ref.fields['safeTxHash'])}, not {safe_tx_hash}"
                )

    def check_onchain(self, badge: Badge) -> BadgeCheck:
        check = BadgeCheck(badge.uid, badge.step, "onchain", badge.attester, badge=badge)
        if badge.revocation_time:
            check.problems.append(f"was revoked at {badge.revocation_time} by its attester {badge.attester}")
        self._common(check, badge)
        return check

    def check_offchain(self, doc: dict[str, Any]) -> BadgeCheck:
        badge, problems = offchain_badge(doc)
        uid = badge.uid if badge else str((doc.get("sig") or {}).get("uid", "?"))
        check = BadgeCheck(
            uid,
            badge.step if badge else None,
            "offchain",
            badge.attester if badge else None,
            problems=list(problems),
            badge=badge,
        )
        if badge is None:
            return check
        sig = doc["sig"]
        msg = offchain_message(sig["message"])
        domain = sig.get("domain") or {}
        expected = {
            "name": OFFCHAIN_DOMAIN_NAME,
            "version": self.ctx.deployment.version,
            "chainId": self.session.chain_id,
            "verifyingContract": self.ctx.address,
        }
        for key, want in expected.items():
            got = domain.get(key)
            if (str(got).lower() if key == "verifyingContract" else got) != (
                str(want).lower() if key == "verifyingContract" else want
            ):
                check.problems.append(f"EIP-712 domain {key} is {got!r}, expected {want!r}")
        if (sig.get("types") or {}).get("Attest") != OFFCHAIN_ATTEST_FIELDS:
            check.problems.append("EIP-712 types are not EAS's off-chain Attest (version 2)")
        if msg.version != 2:
            check.problems.append(f"off-chain attestation version {msg.version} is not supported (expected 2)")
        if hex32(msg.uid) != badge.uid:
            check.problems.append(f"its UID does not match its contents (recomputed {hex32(msg.uid)})")
        try:
            s = sig["signature"]
            ecdsa = EcdsaSignature(int(s["r"], 16), int(s["s"], 16), int(s["v"]))
            payload = msg.typed_data(
                eas=self.ctx.address, eas_version=self.ctx.deployment.version, chain_id=self.session.chain_id
            )
            recovered = ecdsa.recover(typed_data_digest(payload))
        except (KeyError, TypeError, ValueError) as exc:
            check.problems.append(f"signature is malformed: {exc}")
        else:
            if not ecdsa.is_low_s:
                check.problems.append("signature is not low-s (malleable)")
            if recovered != badge.attester:
                check.problems.append(
                    f"signature recovers to {recovered}, not to the claimed attester {badge.attester} "
                    "(forged, or a field was altered after signing)"
                )
        self._batch(check, badge, doc, msg)
        revoked = self.session.chain.call(
            self.ctx.contract.functions.getRevokeOffchain(badge.attester, bytes.fromhex(badge.uid[2:])).call
        )
        if revoked:
            check.problems.append(f"was revoked off chain at {revoked} by its attester {badge.attester}")
        self._common(check, badge)
        return check

    def _batch(self, check: BadgeCheck, badge: Badge, doc: dict[str, Any], msg: OffchainMessage) -> None:
        batch = (doc.get("custody") or {}).get("batch")
        if not batch:
            stamped = self.session.chain.call(
                self.ctx.contract.functions.getTimestamp(bytes.fromhex(badge.uid[2:])).call
            )
            if not stamped:
                check.problems.append(
                    "is neither in an anchored batch nor timestamped on EAS (a batched badge waiting for its "
                    "anchor: `custody attest anchor`)"
                )
            elif stamped < msg.time:
                check.problems.append(f"claims time {msg.time}, after its EAS timestamp {stamped}")
            return
        try:
            root = parse_uid(batch["root"], "batch root")
            proof = [parse_uid(p, "proof element") for p in batch["proof"]]
        except (KeyError, TypeError, InputError) as exc:
            check.problems.append(f"batch proof is malformed: {getattr(exc, 'message', exc)}")
            return
        if not merkle.verify(bytes.fromhex(badge.uid[2:]), proof, root):
            check.problems.append(f"its Merkle proof does not lead to batch root {hex32(root)}")
            return
        stamped = self.session.chain.call(self.ctx.contract.functions.getTimestamp(root).call)
        if not stamped:
            check.problems.append(f"batch root {hex32(root)} was never timestamped on EAS {self.ctx.address}")
        elif stamped < msg.time:
            check.problems.append(f"claims time {msg.time}, after its batch was anchored ({stamped})")
        else:
            check.notes.append(f"in batch {hex32(root)} anchored at {stamped}")

    # -- missing badges --
    def missing(self, vault: str, checks: list[BadgeCheck]) -> list[dict[str, Any]]:
        valid = [c.badge for c in checks if c.ok and c.badge is not None]
        out: list[dict[str, Any]] = []
        auth = self.authority(vault)
        for ex in self.executions(vault):
            _h, policy, _g = auth.at(ex.time)
            emit = policy.attestations.emit if policy is not None and policy.attestations else ()
            if "execution" in emit and not any(
                b.step == "execution" and hex32(b.fields["safeTxHash"]) == ex.safe_tx_hash for b in valid
            ):
                out.append(
                    {
                        "step": "execution",
                        "safe_tx_hash": ex.safe_tx_hash,
                        "tx_hash": ex.tx_hash,
                        "message": f"execution {ex.tx_hash} ({ex.safe_tx_hash}) lacks a valid execution badge",
                    }
                )
            if "approval" in emit:
                for signer in ex.signers:
                    if not any(
                        b.step == "approval"
                        and hex32(b.fields["safeTxHash"]) == ex.safe_tx_hash
                        and to_checksum_address(b.fields["signer"]) == signer
                        for b in valid
                    ):
                        out.append(
                            {
                                "step": "approval",
                                "safe_tx_hash": ex.safe_tx_hash,
                                "signer": signer,
                                "message": f"approval of {ex.safe_tx_hash} by {signer} lacks a valid approval badge",
                            }
                        )
        if self.ledger is not None:  # also the off-chain steps (confirmations), which only the ledger records
            out += self._missing_in_ledger(self.ledger, vault, auth, valid, out)
        return out

    def _missing_in_ledger(
        self, ledger: LedgerView, vault: str, auth: Authority, valid: list[Badge], known: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Ledger entries of steps the template in force asked a badge for, with no valid badge citing them
        (or, for badges issued without a link, attesting the same step)."""
        cited = {bytes(b.fields.get("ledgerEntry", ZERO32)) for b in valid}
        seen = {
            (m["step"], m.get("safe_tx_hash"), str(m.get("signer") or m.get("confirmer") or "").lower()) for m in known
        }
        executed_at = {e.safe_tx_hash: e.time for e in self.executions(vault)}
        out = []
        for leaf, entry in sorted(ledger.live(vault), key=lambda item: item[1].get("seq", 0)):
            step = LINKED_STEPS[entry["kind"]]
            if step == "execution" and not (entry.get("payload") or {}).get("success", True):
                continue  # a failed execution moved nothing and gets no badge
            # the template in force when the transaction executed (chain time), else now
            safe_tx_hash = (entry.get("refs") or {}).get("safe_tx_hash")
            executed = executed_at.get(safe_tx_hash, self.now) if safe_tx_hash is not None else self.now
            _h, policy, _g = auth.at(executed)
            if policy is None or policy.attestations is None or step not in policy.attestations.emit:
                continue
            if leaf in cited or any(mismatch(step, b.fields, entry) is None for b in valid if b.step == step):
                continue
            actor = str(entry.get("actor") or "")
            if (step, safe_tx_hash, "" if step == "execution" else actor.lower()) in seen:
                continue
            out.append(
                {
                    "step": step,
                    "safe_tx_hash": safe_tx_hash,
                    "ledger_seq": entry.get("seq"),
                    "ledger_entry": hex32(leaf),
                    "actor": actor,
                    "message": f"{ledger.source} entry #{entry.get('seq')} ({entry['kind']} of {safe_tx_hash} by {actor}) "
                    f"lacks a valid {step} badge",
                }
            )
        return out

    # -- entry points --
    def verify_vault(self, vault: str) -> Report:
        vault = to_checksum_address(vault)
        report = Report(vault)
        auth = self.authority(vault)
        report.problems += auth.problems
        report.templates = auth.describe()
        for badge in onchain_badges(self.session, self.ctx, vault, self._start(vault)):
            report.checks.append(self.check_onchain(badge))
        for _uid, (offchain, doc) in self._offchain.items():
            if offchain is not None and offchain.vault == vault:
                report.checks.append(self.check_offchain(doc))
        report.missing = self.missing(vault, report.checks)
        return report

    def verify_uid(self, uid: str) -> Report:
        uid = hex32(parse_uid(uid))
        badge = self.onchain(uid)
        if badge is not None:
            check = self.check_onchain(badge)
        elif uid in self._offchain:
            check = self.check_offchain(self._offchain[uid][1])
        else:
            raise UnknownAttestation(
                f"{uid} is neither an attestation on EAS {self.ctx.address} nor in the given documents"
            )
        report = Report(check.badge.vault if check.badge else None, [check])
        if check.badge is not None and check.badge.vault:
            report.problems += self.authority(check.badge.vault).problems
        return report

    def verify_documents(self, documents: list[dict[str, Any]]) -> Report:
        report = Report(None)
        for doc in documents:
            report.checks.append(self.check_offchain(doc))
        vaults_seen = {c.badge.vault for c in report.checks if c.badge is not None and c.badge.vault}
        for vault in sorted(vaults_seen):
            report.problems += self.authority(vault).problems
        return report


def known_steps() -> list[str]:
    return list(STEPS)
