"""What verification reads from the chain and the attestation files, before judging anything.

* which template was in force when: the Safe's ``ChangedGuard`` events, each guard's immutable
  ``TEMPLATE_HASH``, matched by keccak256 to the texts the workspace keeps or the auditor passes
  (:class:`Authority`);
* the vault's executions and their signers, from the Safe's own events (:func:`executions`);
* the custody badges about a vault: EAS ``Attested`` events read back with ``getAttestation``
  (:func:`onchain_badges`), and off-chain attestation documents parsed (:func:`offchain_badge`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_utils import keccak, to_checksum_address

from custody.attest.badges import (
    Badge,
    EasContext,
    _badge_from_tuple,
    hex32,
    parse_uid,
)
from custody.attest.schemas import STEP_BY_UID
from custody.attest.typed import OffchainMessage
from custody.chain.logs import DecodedLog, decode_logs, layouts_from_abi, rpc_batch
from custody.contracts import load_artifact
from custody.contracts.deploy import read_many
from custody.exceptions import AttestationError, InputError, SignatureError, TemplateError
from custody.policy.template import Policy, load_policy_text
from custody.safe.signatures import verify_owner_signature
from custody.session import Session
from custody.store import templates, timelock_ops, vaults
from custody.types import ZERO_ADDRESS, Address, parse_address

LOG_CHUNK = 10_000


# -- chain reading helpers --------------------------------------------------------------------------------
def _get_logs(
    session: Session, address: str, layouts: dict[str, Any], from_block: int, topics_extra: list[Any] | None = None
) -> list[DecodedLog]:
    latest = session.chain.call(lambda: session.chain.w3.eth.block_number)
    out: list[DecodedLog] = []
    start = from_block
    while start <= latest:
        end = min(start + LOG_CHUNK - 1, latest)
        params = {
            "address": to_checksum_address(address),
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "topics": [list(layouts)] + (topics_extra or []),
        }
        out += decode_logs(rpc_batch(session.chain, [("eth_getLogs", [params])])[0], layouts)
        start = end + 1
    return out


def _block_times(session: Session, numbers: Iterable[int]) -> dict[int, int]:
    wanted = sorted(set(numbers))
    blocks = rpc_batch(session.chain, [("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
    return {n: int(b["timestamp"], 16) for n, b in zip(wanted, blocks)}


# -- who may attest: templates in force over time ------------------------------------------------------
@dataclass
class Authority:
    """The vault's template timeline, as anchored on chain by its guards' TEMPLATE_HASH."""

    vault: Address
    times: list[int]
    entries: list[tuple[str | None, Policy | None, str]]  # (template hash, template, guard)
    problems: list[str]

    def at(self, when: int) -> tuple[str | None, Policy | None, str | None]:
        i = bisect.bisect_right(self.times, when) - 1
        if i < 0:
            return None, None, None
        return self.entries[i]

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"from_time": t, "guard": g, "template_hash": h, "template": p.name if p else None}
            for t, (h, p, g) in zip(self.times, self.entries)
        ]


def known_templates(session: Session | None, vault: str, files: Iterable[str | Path] = ()) -> dict[str, Policy]:
    """keccak256(template) → template, from the workspace's history of the vault and from files."""
    texts: list[tuple[str, str]] = []
    if session is not None:
        with session.store.connect() as conn:
            texts += [(src, path) for src, path in conn.execute(sa.select(templates.c.source, templates.c.path))]
            row = conn.execute(
                sa.select(vaults.c.id, vaults.c.policy_source, vaults.c.policy_path).where(
                    vaults.c.chain_id == session.chain_id, sa.func.lower(vaults.c.safe) == vault.lower()
                )
            ).first()
            if row is not None:
                texts.append((row.policy_source, row.policy_path))
                for src, path in conn.execute(
                    sa.select(timelock_ops.c.policy_source, timelock_ops.c.policy_path).where(
                        timelock_ops.c.vault_id == row.id, timelock_ops.c.policy_source.is_not(None)
                    )
                ):
                    texts.append((src, path or "<template>"))
    for f in files:
        p = Path(f)
        try:
            texts.append((p.read_text(encoding="utf-8"), str(p)))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"template {p} cannot be read: {exc}") from None
    out: dict[str, Policy] = {}
    for text, path in texts:
        h = "0x" + keccak(text.encode("utf-8")).hex()
        if h in out:
            continue
        try:
            out[h] = load_policy_text(text, path)
        except TemplateError as exc:
            raise InputError(f"template {path} is not a valid template: {exc.message}") from None
    return out


def authority(session: Session, vault: str, templates: dict[str, Policy], from_block: int = 0) -> Authority:
    safe_abi = load_artifact("SafeL2").abi
    layouts = layouts_from_abi(safe_abi, ["ChangedGuard"])
    changes = _get_logs(session, vault, layouts, from_block)
    times = _block_times(session, [log.block_number for log in changes])
    out = Authority(Address(to_checksum_address(vault)), [], [], [])
    for log in changes:
        guard = Address(to_checksum_address(log.values[0]))
        if guard == ZERO_ADDRESS:
            entry: tuple[Any, ...] = (None, None, guard)
        else:
            try:
                (info,) = read_many(session.chain, [session.contract("CustodyGuard", guard).functions.info()])
            except Exception:
                out.problems.append(f"guard {guard} installed in block {log.block_number} is not a CustodyGuard")
                entry = (None, None, guard)
            else:
                h = "0x" + bytes(info[3]).hex()  # GuardInfo.templateHash
                policy = templates.get(h)
                if policy is None:
                    out.problems.append(
                        f"the template with hash {h} (guard {guard}, from block {log.block_number}) is not available: "
                        "pass it with --template FILE"
                    )
                entry = (h, policy, guard)
        out.times.append(times[log.block_number])
        out.entries.append(entry)
    if not changes:
        out.problems.append(f"{vault} never installed a guard: no template is anchored on chain")
    return out


# -- executions and their signers, from the Safe's own events ------------------------------------------------
@dataclass(frozen=True)
class Execution:
    safe_tx_hash: str
    tx_hash: str
    block: int
    time: int
    signers: tuple[str, ...]


def executions(session: Session, vault: str, from_block: int = 0) -> list[Execution]:
    layouts = layouts_from_abi(load_artifact("SafeL2").abi, ["ExecutionSuccess", "SafeMultiSigTransaction"])
    logs = _get_logs(session, vault, layouts, from_block)
    by_tx: dict[str, dict[str, Any]] = {}
    for log in logs:
        item = by_tx.setdefault(log.tx_hash, {"block": log.block_number, "success": [], "multisig": []})
        (item["success"] if log.event == "ExecutionSuccess" else item["multisig"]).append(log)
    times = _block_times(session, [v["block"] for v in by_tx.values()])
    out = []
    for tx_hash, item in by_tx.items():
        for success, multisig in zip(item["success"], item["multisig"]):
            safe_tx_hash = (
                bytes(success.values[0])
                if isinstance(success.values[0], bytes)
                else bytes.fromhex(success.values[0][2:])
            )
            sig_blob = bytes(multisig.values[multisig_field(layouts, "signatures")])
            out.append(
                Execution(
                    hex32(safe_tx_hash), tx_hash, item["block"], times[item["block"]], _signers(sig_blob, safe_tx_hash)
                )
            )
    return sorted(out, key=lambda e: (e.block, e.tx_hash))


def multisig_field(layouts: dict[str, Any], name: str) -> int:
    layout = next(lay for lay in layouts.values() if lay.name == "SafeMultiSigTransaction")
    return int(layout.field_names.index(name))


def _signers(blob: bytes, safe_tx_hash: bytes) -> tuple[str, ...]:
    out: list[str] = []
    for i in range(0, len(blob) - len(blob) % 65, 65):
        chunk = blob[i : i + 65]
        v = chunk[64]
        if v in (0, 1):  # contract signature / approved hash: the owner is r
            out.append(to_checksum_address(chunk[12:32]))
            continue
        try:
            out.append(verify_owner_signature(chunk, safe_tx_hash).signer)
        except SignatureError:
            continue
    return tuple(out)


# -- reading badges ---------------------------------------------------------------------------------------
def onchain_badges(session: Session, ctx: EasContext, vault: str, from_block: int = 0) -> list[Badge]:
    layouts = layouts_from_abi(ctx.contract.abi, ["Attested"])
    schema_topics = ["0x" + uid.hex() for uid in STEP_BY_UID]
    logs = _get_logs(session, ctx.address, layouts, from_block, [None, None, schema_topics])
    uids = [log.values[2] if isinstance(log.values[2], bytes) else bytes.fromhex(log.values[2][2:]) for log in logs]
    tx_of = {hex32(u): log.tx_hash for u, log in zip(uids, logs)}
    raws = read_many(session.chain, [ctx.contract.functions.getAttestation(u) for u in uids]) if uids else []
    out = []
    for raw in raws:
        try:
            badge = _badge_from_tuple(raw, tx_hash=tx_of.get(hex32(bytes(raw[0]))))
        except AttestationError:
            continue  # custody schema but undecodable data: cannot be about this vault
        if badge.vault == to_checksum_address(vault):
            out.append(badge)
    return out


def offchain_badge(doc: dict[str, Any]) -> tuple[Badge | None, list[str]]:
    """Decode an EAS off-chain attestation document (no chain access); problems if malformed."""
    try:
        sig, message = doc["sig"], doc["sig"]["message"]
        uid = parse_uid(sig["uid"], "document uid")
        schema = parse_uid(message["schema"], "schema")
        st = STEP_BY_UID.get(schema)
        if st is None:
            return None, [f"schema {hex32(schema)} is not a custody step"]
        msg = offchain_message(message)
        fields = st.decode(msg.data)
        signer = parse_address(doc["signer"], what="document signer")
    except (KeyError, TypeError, ValueError, InputError) as exc:
        text = exc.message if isinstance(exc, InputError) else f"missing or malformed field {exc}"
        return None, [f"not an EAS off-chain attestation document: {text}"]
    batch = (doc.get("custody") or {}).get("batch") or {}
    badge = Badge(
        uid=hex32(uid),
        step=st.name,
        mode="offchain",
        attester=signer,
        recipient=Address(to_checksum_address(msg.recipient)),
        ref_uid=hex32(msg.ref_uid),
        time=msg.time,
        expiration=msg.expiration,
        revocation_time=0,
        revocable=msg.revocable,
        fields=fields,
        batch_root=batch.get("root"),
    )
    return badge, []


def offchain_message(m: dict[str, Any]) -> OffchainMessage:
    def b32(key: str) -> bytes:
        return parse_uid(m[key], key)

    data = m["data"]
    if not isinstance(data, str) or not data.startswith("0x"):
        raise ValueError("data must be 0x-hex")
    return OffchainMessage(
        schema=b32("schema"),
        recipient=parse_address(m["recipient"], what="recipient", allow_zero=True),
        time=int(m["time"]),
        expiration=int(m["expirationTime"]),
        revocable=bool(m["revocable"]),
        ref_uid=b32("refUID"),
        data=bytes.fromhex(data[2:]),
        salt=b32("salt"),
        version=int(m["version"]),
    )
