"""Sanctions screening: a dated list of sanctioned EVM addresses (OFAC SDN "Digital Currency Address"
entries), offline imports of newer SDN files with their diff, and an optional on-chain oracle with the
Chainalysis ``isSanctioned(address)`` interface.

The packaged snapshot (``data/sanctions-snapshot.json``) records where its addresses come from, when,
and the SHA-256 of its address list; a workspace that imported a newer file uses that instead
(``<workspace>/risk/lists/active.json``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from custody.exceptions import InputError, RiskError
from custody.risk.calls import transfers
from custody.risk.inputs import RiskInputs
from custody.risk.verdict import Reason, Severity

LAYER = "sanctions"
SNAPSHOT = "sanctions-snapshot.json"
ACTIVE = "active.json"
_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
_CSV_ADDRESS = re.compile(r"Digital Currency Address - ([A-Z0-9]+)\s+(0x[0-9a-fA-F]{40})")


@dataclass(frozen=True)
class SanctionsList:
    source: str
    date: str  # publication date of the source (ISO), or "unknown"
    addresses: dict[str, str]  # lowercase address -> what the source says about it (program / entry / type)

    @property
    def sha256(self) -> str:
        """SHA-256 of the sorted, lowercase address list (one per line): the list's identity."""
        blob = "".join(a + "\n" for a in sorted(self.addresses))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def version(self) -> str:
        return f"{self.date}:{self.sha256[:16]}"

    def hit(self, address: str) -> str | None:
        return self.addresses.get(address.lower())

    def as_document(self) -> dict[str, Any]:
        return {
            "format": "custody.sanctions-list/1",
            "source": self.source,
            "date": self.date,
            "sha256": self.sha256,
            "count": len(self.addresses),
            "addresses": dict(sorted(self.addresses.items())),
        }


def from_document(doc: dict[str, Any], *, where: str) -> SanctionsList:
    if doc.get("format") != "custody.sanctions-list/1" or not isinstance(doc.get("addresses"), dict):
        raise InputError(f"{where} is not a custody sanctions list (format custody.sanctions-list/1)")
    found = SanctionsList(
        str(doc.get("source", "")),
        str(doc.get("date", "unknown")),
        {k.lower(): str(v) for k, v in doc["addresses"].items()},
    )
    if doc.get("sha256") and doc["sha256"] != found.sha256:
        raise InputError(f"{where}: the address list does not hash to its recorded sha256; the file was altered")
    return found


def packaged() -> SanctionsList:
    text = resources.files("custody.risk").joinpath("data", SNAPSHOT).read_text(encoding="utf-8")
    return from_document(json.loads(text), where=f"packaged {SNAPSHOT}")


def lists_dir(home: Path) -> Path:
    folder = Path(home) / "risk" / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def active(home: Path) -> SanctionsList:
    """The workspace's imported list, else the packaged snapshot."""
    path = Path(home) / "risk" / "lists" / ACTIVE
    if path.exists():
        return from_document(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    return packaged()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_sdn_xml(blob: bytes, *, source: str) -> SanctionsList:
    """EVM addresses from an OFAC SDN XML file: the classic ``sdn.xml`` (``sdnEntry/idList/id`` with
    ``idType`` "Digital Currency Address - XXX") and ``sdn_advanced.xml`` (``Feature`` elements whose
    ``FeatureType`` is a "Digital Currency Address - XXX"). Namespaces are ignored."""
    try:
        root = ElementTree.fromstring(blob)
    except ElementTree.ParseError as exc:
        raise InputError(f"{source} is not well-formed XML: {exc}") from exc
    found: dict[str, str] = {}
    date = "unknown"
    for element in root.iter():
        name = _local(element.tag)
        if name in ("Publish_Date", "PublishDate", "DatePublished") and element.text and date == "unknown":
            date = _iso_date(element.text.strip())
        if name == "sdnEntry":
            uid = next((c.text for c in element if _local(c.tag) == "uid"), "") or ""
            label = next((c.text for c in element if _local(c.tag) == "lastName"), "") or ""
            for ident in element.iter():
                if _local(ident.tag) != "id":
                    continue
                fields = {_local(c.tag): (c.text or "").strip() for c in ident}
                kind = fields.get("idType", "")
                number = fields.get("idNumber", "")
                if kind.startswith("Digit") and "Currency Address" in kind and _EVM.fullmatch(number):
                    found[number.lower()] = f"SDN {uid} {label} ({kind})".strip()
    feature_types = {
        e.get("ID"): (e.text or "").strip() for e in root.iter() if _local(e.tag) == "FeatureType" and e.get("ID")
    }
    for feature in root.iter():
        if _local(feature.tag) != "Feature":
            continue
        kind = feature_types.get(feature.get("FeatureTypeID"), "")
        if "Digital Currency Address" not in kind:
            continue
        for detail in feature.iter():
            text = (detail.text or "").strip()
            if _local(detail.tag) == "VersionDetail" and _EVM.fullmatch(text):
                found[text.lower()] = f"SDN feature {feature.get('ID')} ({kind})"
    return SanctionsList(source, date, found)


def parse_sdn_csv(text: str, *, source: str) -> SanctionsList:
    """EVM addresses from OFAC's ``sdn.csv`` (addresses sit in the remarks column as
    "Digital Currency Address - ETH 0x…;"), or a plain CSV with an ``address`` column."""
    rows = list(csv.reader(io.StringIO(text)))
    found: dict[str, str] = {}
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "address" in header:
        column = header.index("address")
        for row in rows[1:]:
            if len(row) > column and _EVM.fullmatch(row[column].strip()):
                found[row[column].strip().lower()] = ", ".join(c.strip() for i, c in enumerate(row) if i != column)
        return SanctionsList(source, "unknown", found)
    for row in rows:
        for cell in row:
            for asset, address in _CSV_ADDRESS.findall(cell):
                found[address.lower()] = f"SDN {row[0].strip()} {row[1].strip() if len(row) > 1 else ''} ({asset})"
    return SanctionsList(source, "unknown", found)


def _iso_date(text: str) -> str:
    match = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", text)
    if match:
        month, day, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return text[:10]


def read_file(path: str | Path, *, date: str | None = None) -> SanctionsList:
    file = Path(path)
    try:
        blob = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    head = blob.lstrip()[:1]
    if head == b"<":
        parsed = parse_sdn_xml(blob, source=file.name)
    elif head == b"{":
        parsed = from_document(json.loads(blob), where=str(path))
    else:
        parsed = parse_sdn_csv(blob.decode("utf-8", errors="replace"), source=file.name)
    if date is not None:
        parsed = SanctionsList(parsed.source, date, parsed.addresses)
    return parsed


@dataclass(frozen=True)
class ListDiff:
    previous: SanctionsList
    current: SanctionsList

    @property
    def additions(self) -> list[str]:
        return sorted(set(self.current.addresses) - set(self.previous.addresses))

    @property
    def delistings(self) -> list[str]:
        return sorted(set(self.previous.addresses) - set(self.current.addresses))


def install(home: Path, new: SanctionsList) -> ListDiff:
    """Make ``new`` the workspace's active list; returns the diff against the list it replaces."""
    previous = active(home)
    path = lists_dir(home) / ACTIVE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(new.as_document(), indent=1), encoding="utf-8")
    temporary.replace(path)
    return ListDiff(previous, new)


def check(inputs: RiskInputs, listed: SanctionsList) -> list[Reason]:
    found = []
    targets = {t.destination for t in transfers(inputs.decoded)}
    if inputs.decoded.kind in ("erc20",) and inputs.decoded.function in ("approve", "increaseAllowance"):
        targets.add(str(inputs.decoded.recipient))
    targets.add(inputs.safe_tx.to)
    for address in sorted(targets):
        entry = listed.hit(address)
        if entry is not None or address.lower() in inputs.oracle_hits:
            found.append(
                Reason(
                    "sanctioned_counterparty",
                    LAYER,
                    Severity.DENY,
                    f"{address} is sanctioned ({entry or 'on-chain oracle'})",
                    {
                        "address": address,
                        "list": listed.version,
                        "entry": entry or "",
                        "oracle": address.lower() in inputs.oracle_hits,
                    },
                )
            )
    for inbound in inputs.inbound:
        entry = listed.hit(inbound.sender)
        if entry is not None or inbound.sender.lower() in inputs.oracle_hits:
            found.append(
                Reason(
                    "sanctioned_deposit_counterparty",
                    LAYER,
                    Severity.WARN,
                    f"the vault received funds from sanctioned {inbound.sender}",
                    {"address": inbound.sender, "list": listed.version, "entry": entry or ""},
                )
            )
    return found


class OracleError(RiskError):
    """The configured on-chain oracle gave no usable answer (the decision then fails closed)."""
