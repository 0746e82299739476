"""`custody risk …` and the verdict in `tx sign`, through the CLI."""

from __future__ import annotations

import json

from custody.audit.record import ledger_for
from custody.vault import service
from tests.conftest import POLICIES

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def test_risk_commands_and_the_verdict_before_signing(session, run_cli, tmp_path):
    vault, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=vault.safe, value=10**19, what="fund")
    proposed = run_cli("tx", "propose", vault.name, "--to", PRIME, "--amount", "1", "--proposer", "anvil:1")
    assert proposed.exit_code == 0, proposed.stderr
    assert "risk            ACCEPT (at propose" in proposed.stdout
    signed = run_cli("tx", "sign", "1", "--signer", "anvil:1")
    assert signed.exit_code == 0, signed.stderr
    assert "risk verdict    ACCEPT" in signed.stderr
    explained = json.loads(run_cli("risk", "explain", "1", "--json").stdout)
    assert [d["stage"] for d in explained["decisions"]] == ["propose", "sign"]
    assert explained["decisions"][1]["backend"] == "anvil"
    human = run_cli("risk", "explain", "1")
    assert "ACCEPT at sign" in human.stdout and "first_time_listed_destination" in human.stdout
    scored = json.loads(run_cli("risk", "score", "1", "--json").stdout)
    assert scored["stage"] == "score" and scored["verdict"] == "accept"
    trained = json.loads(run_cli("risk", "train", vault.name, "--json").stdout)
    (entry,) = [e for e in ledger_for(session.store).entries() if e.kind == "risk_model_trained"]
    assert entry.payload["sha256"] == trained["sha256"] and trained["version"] == 1
    shown = json.loads(run_cli("risk", "lists", "show", "--json").stdout)
    assert shown["count"] >= 100 and "OFAC SDN" in shown["source"]


def test_deposits_from_a_listed_sender_open_one_case(session, run_cli, tmp_path):
    vault, _ = service.create_vault(session, POLICIES / "hot.yaml")
    funder = session.sender.address
    session.send(to=vault.safe, value=10**18, what="a deposit from the operator account")
    listing = tmp_path / "fixture-list.csv"  # TEST FIXTURE: a local test account, not sanctions data
    listing.write_text(f"address,name,program\n{funder},TEST FIXTURE FUNDER,TEST\n")
    imported = run_cli("risk", "lists", "import", str(listing), "--date", "2026-12-02", "--json")
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["additions"] == [funder.lower()]
    assert run_cli("audit", "index", "--json").exit_code == 0
    screened = json.loads(run_cli("risk", "screen-deposits", vault.name, "--json").stdout)
    (hit,) = screened["hits"]
    assert hit["sender"].lower() == funder.lower() and hit["amount"] == str(10**18) and hit["case"] == "case-00001"
    again = json.loads(run_cli("risk", "screen-deposits", vault.name, "--json").stdout)
    assert len(again["hits"]) == 1 and "case" not in again["hits"][0]
    cases = json.loads(run_cli("risk", "cases", "list", "--json").stdout)
    assert [c["reason"] for c in cases] == ["sanctioned_deposit_counterparty"]
    out = tmp_path / "cases.json"
    assert run_cli("risk", "cases", "export", str(out)).exit_code == 0
    assert json.loads(out.read_text())["cases"][0]["deposit"] == {"asset": "ETH", "amount": str(10**18)}
    empty = tmp_path / "empty.csv"
    empty.write_text("address\nnot-an-address\n")
    refused = run_cli("risk", "lists", "import", str(empty), "--json")
    assert refused.exit_code == 1 and "holds no EVM digital-currency addresses" in json.loads(refused.stdout)["message"]
