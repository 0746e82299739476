"""Exports redact an explicit list of secret fields (not every key ending in "code"), and every exported entry
stays checkable: its ledger leaf hash is exported, and each masked value's hash."""

from __future__ import annotations

import hashlib
import json

import orjson

from custody.audit.export import REDACTED, jsonl
from custody.audit.record import ledger_for
from custody.audit.service import export
from custody.vault import service
from tests.conftest import POLICIES

ENTRY = {
    "seq": 7, "kind": "reconciliation_run", "actor": "operator",
    "payload": {"exit_code": 4, "findings": 2, "passphrase": "hunter2", "code": "12345678",
                "description": "questions to ops@example.com", "error_code": "E1"},
}  # fmt: skip


def _leaf(entry: dict) -> str:
    return "0x" + hashlib.sha256(b"\x00" + orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)).hexdigest()


def test_only_listed_secret_fields_are_masked_and_their_hashes_exported():
    (line,) = [json.loads(x) for x in jsonl([ENTRY])]
    payload = line["payload"]
    assert (payload["exit_code"], payload["error_code"], payload["findings"]) == (4, "E1", 2)
    assert payload["passphrase"] == payload["code"] == REDACTED
    assert payload["description"] == f"questions to {REDACTED}"
    assert line["entry_hash"] == _leaf(ENTRY)
    hashes = line.pop("redacted_hashes")
    assert set(hashes) == {"payload.passphrase", "payload.code", "payload.description"}
    assert hashes["payload.passphrase"] == "sha256:" + hashlib.sha256(b'"hunter2"').hexdigest()
    # the originals put back, the line hashes to the exported entry hash
    restored = {k: v for k, v in line.items() if k != "entry_hash"}
    restored["payload"].update(passphrase="hunter2", code="12345678", description="questions to ops@example.com")
    assert _leaf(restored) == line["entry_hash"]


def test_exported_lines_match_the_ledger_hashes(session, workspace):
    service.create_vault(session, POLICIES / "hot.yaml")
    text = export(session.store, "jsonl", None)["text"]
    lines = [json.loads(x) for x in text.splitlines()]
    leaves = ["0x" + leaf.hex() for _seq, leaf, _blob in ledger_for(session.store).rows()]
    assert len(lines) == len(leaves) > 0
    for line, leaf in zip(lines, leaves, strict=True):
        assert line["entry_hash"] == leaf
        if "redacted_hashes" not in line:  # nothing masked: the line itself hashes to its ledger leaf
            assert _leaf({k: v for k, v in line.items() if k != "entry_hash"}) == leaf


def test_rule_codes_of_risk_reasons_and_integrity_problems_stay_readable_and_other_codes_are_masked():
    """A risk reason's or an integrity problem's `code` names a rule ("lookalike_destination"), which an auditor
    needs; a `code` anywhere else (an out-of-band challenge code, were one ever stored) is still masked."""
    entry = {
        "seq": 1, "kind": "risk_decision", "actor": "operator",
        "payload": {
            "reasons": [{"code": "lookalike_destination", "severity": "deny"}],
            "integrity": {"problems": [{"sequence": 3, "code": "leaf_mismatch"}]},
            "confirmation": {"code": "481516"},
            "codes": [{"code": "2342"}],
        },
    }  # fmt: skip
    (line,) = [json.loads(x) for x in jsonl([entry])]
    payload = line["payload"]
    assert payload["reasons"][0]["code"] == "lookalike_destination"
    assert payload["integrity"]["problems"][0]["code"] == "leaf_mismatch"
    assert payload["confirmation"]["code"] == REDACTED
    assert payload["codes"][0]["code"] == REDACTED
    assert set(line["redacted_hashes"]) == {"payload.confirmation.code", "payload.codes[0].code"}
