"""The audit bundle: everything an outside auditor needs to verify the ledger offline, in one tar.gz.

Layout (``custody.audit-bundle/1``)::

    manifest.json            format, log id, size, root, created, SHA-256 of every other file
    entries.jsonl            the canonical entries, one per line, in sequence order (line n = seq n)
    heads.json               every signed tree head
    anchors.json             where heads were published on chain (method, contract, tx, block)
    proofs/consistency.json  RFC 9162 consistency proofs between consecutive heads
    proofs/inclusion.jsonl   RFC 9162 inclusion proof of each entry in the latest head (first 100,000)
    keys/                    the ledger keys: <id>.pem (Ed25519 public key) or <id>.txt (secp256k1 address)
    contracts/               the contract artifacts (ABI, bytecode) of the custody contracts
    policies/                each vault's policy template as recorded at creation / last policy change
    attestations/offchain.json  the workspace's EAS off-chain attestations (batched badges, inventory tags),
                             each with its Merkle proof to an anchored root: `custody attest verify --ledger`
    README.txt               how to verify

Entries carry no secrets by construction (see :mod:`custody.audit.record`); the bundle ships them
verbatim because their bytes are what the heads sign.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from custody import _paths
from custody._progress import Progress, counted
from custody.audit.anchor import anchors as recorded_anchors
from custody.audit.integrity import Problem
from custody.audit.keys import SignedHead, public_key_pem
from custody.audit.ledger import Ledger
from custody.audit.merkle import MerkleTree, leaf_hashes
from custody.exceptions import BundleError
from custody.store import Store, badges, vaults

FORMAT = "custody.audit-bundle/1"
OFFCHAIN_ATTESTATIONS = "attestations/offchain.json"  # a JSON list of EAS off-chain attestation documents
MAX_INCLUSION = 100_000
README = """custody audit bundle

Verify offline:            custody audit verify --bundle THIS_FILE
Verify against the chain:  custody audit verify --bundle THIS_FILE --rpc URL
Pin the operator's key:    custody audit verify --bundle THIS_FILE --key KEY_ID   (compare with keys/)

entries.jsonl line n is entry n (canonical JSON); leaf hash = SHA-256(0x00 || line), node hash =
SHA-256(0x01 || left || right) (RFC 6962/9162); heads.json signs {log, root, size, time}.
"""


def _key_file(key_id: str) -> tuple[str, bytes]:
    scheme, _, ident = key_id.partition(":")
    pem = public_key_pem(key_id)
    if pem is not None:
        return f"keys/{scheme}-{ident[:16]}.pem", pem.encode()
    return f"keys/{scheme}-{ident.lower()}.txt", (key_id + "\n").encode()


def export_bundle(
    ledger: Ledger, path: str | Path, *, store: Store | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the bundle of ``ledger`` to ``path`` (tar.gz); returns the manifest. ``progress(entries, size)`` as
    the entries are read into it."""
    rows = list(counted(ledger.rows(), ledger.size, progress))
    entries = [blob for _s, _l, blob in rows]
    heads = ledger.heads()
    tree = MerkleTree(leaf_hashes(entries))
    files: dict[str, bytes] = {
        "entries.jsonl": b"".join(e + b"\n" for e in entries),
        "heads.json": json.dumps([h.as_dict() for h in heads], indent=1).encode(),
        "anchors.json": json.dumps(recorded_anchors(ledger.store), indent=1).encode(),
        "README.txt": README.encode(),
    }
    sizes = sorted({h.size for h in heads if 0 < h.size <= len(entries)})
    consistency = [
        {"first": a, "second": b, "path": [p.hex() for p in tree.consistency_path(a, b)]}
        for a, b in itertools.pairwise(sizes)
    ]
    files["proofs/consistency.json"] = json.dumps(consistency).encode()
    latest = heads[-1] if heads else None
    if latest is not None and latest.size <= len(entries):
        lines = (
            json.dumps(
                {
                    "index": i,
                    "size": latest.size,
                    "leaf_hash": tree.levels[0][i].hex(),
                    "path": [p.hex() for p in tree.inclusion_path(i, latest.size)],
                }
            )
            for i in range(min(latest.size, MAX_INCLUSION))
        )
        files["proofs/inclusion.jsonl"] = "\n".join(lines).encode() + b"\n"
    for key_id in sorted({h.key_id for h in heads}):
        name, data = _key_file(key_id)
        files[name] = data
    for artifact in sorted(_paths.ARTIFACTS_DIR.glob("*.json")):
        files[f"contracts/{artifact.name}"] = artifact.read_bytes()
    with (store or ledger.store).connect() as conn:
        for row in conn.execute(sa.select(vaults.c.chain_id, vaults.c.name, vaults.c.policy_source)).mappings():
            files[f"policies/{row['chain_id']}-{row['name']}.yaml"] = row["policy_source"].encode()
        documents = conn.execute(
            sa.select(badges.c.document).where(badges.c.mode == "offchain").order_by(badges.c.id)
        ).scalars()
        offchain = [json.loads(d) for d in documents if d]
    if offchain:
        files[OFFCHAIN_ATTESTATIONS] = json.dumps(offchain, indent=1, sort_keys=True).encode()
    state = ledger.state()
    manifest = {
        "format": FORMAT,
        "log_id": state.log_id,
        "size": len(entries),
        "root": tree.root().hex(),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "keys": sorted({h.key_id for h in heads}),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return manifest


@dataclass
class Bundle:
    log_id: str
    size: int
    keys: list[str]
    entries: list[bytes]
    heads: list[SignedHead]
    anchors: list[dict[str, Any]]
    consistency: list[dict[str, Any]]
    inclusion: list[dict[str, Any]]
    files: dict[str, bytes]
    problems: list[Problem] = field(default_factory=list)


def read_bundle(path: str | Path) -> Bundle:
    """Read a bundle; file hashes are checked against the manifest (mismatches become problems)."""
    try:
        # the whole gzip stream is decompressed first: its end-of-stream CRC and length catch a truncated or
        # damaged file even when the tar members happen to be readable before the damage
        archive = gzip.decompress(Path(path).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise BundleError(f"{path} is not a readable audit bundle (tar.gz): {exc}") from exc
    if "manifest.json" not in files or "entries.jsonl" not in files:
        raise BundleError(f"{path} has no manifest.json or entries.jsonl; it is not an audit bundle")
    try:
        manifest = json.loads(files["manifest.json"])
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{path} is a {manifest.get('format')!r} bundle, expected {FORMAT}")
        heads = [SignedHead.from_dict(h) for h in json.loads(files.get("heads.json", b"[]"))]
        anchors = json.loads(files.get("anchors.json", b"[]"))
        consistency = json.loads(files.get("proofs/consistency.json", b"[]"))
        inclusion = [json.loads(line) for line in files.get("proofs/inclusion.jsonl", b"").splitlines() if line.strip()]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path} has a malformed manifest, heads, anchors or proofs file: {exc}") from exc
    problems = []
    for name, digest in manifest.get("files", {}).items():
        if name not in files:
            problems.append(Problem(None, "bundle_file_missing", f"{name} is listed in the manifest but missing"))
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(Problem(None, "bundle_file_altered", f"{name} does not match its SHA-256 in the manifest"))
    raw = files["entries.jsonl"]
    entries = raw.split(b"\n")
    if entries and entries[-1] == b"":
        entries.pop()
    heads.sort(key=lambda h: (h.size, h.id or 0))
    return Bundle(
        log_id=str(manifest.get("log_id")),
        size=int(manifest.get("size", -1)),
        keys=list(manifest.get("keys", [])),
        entries=entries,
        heads=heads,
        anchors=anchors,
        consistency=consistency,
        inclusion=inclusion,
        files=files,
        problems=problems,
    )
