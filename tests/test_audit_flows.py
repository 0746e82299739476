"""The ledger in real custody flows on Anvil: recording points, the indexer, verification against the
chain (exit codes 0/2/3), anchoring, exports and bundles, through the service layer and the CLI."""

from __future__ import annotations

import csv
import io
import json
import tarfile

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody.audit import service as audit_service
from custody.audit.bundle import read_bundle
from custody.audit.indexer import index_vaults
from custody.audit.record import ledger_for
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.exceptions import AuditError
from custody.policy import change
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import pack_signatures, verify_owner_signature
from custody.signers.local import anvil_signer
from custody.types import Operation
from custody.vault import proposals, service
from tests.conftest import POLICIES

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
MINT = function_signature_to_4byte_selector("mint(address,uint256)")


def kinds(session) -> list[str]:
    return [e.kind for e in ledger_for(session.store).entries()]


@pytest.fixture
def hot(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=10 * 10**18, what="ETH deposit")
    session.send(to=DEMO_TOKEN_ADDRESS, data=MINT + encode(["address", "uint256"], [record.safe, 5_000 * 10**6]),
                 what="dUSD deposit")  # fmt: skip
    return record


def transfer(session, vault, amount="1", proposer="alice"):
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount=amount, proposer=proposer)
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    return proposal, proposals.execute(session, proposals.get_proposal(session, proposal.id))


def raw_execute(session, vault, value: int):
    """A Safe execution that bypasses custody entirely (an owner's key used with plain web3)."""
    nonce = proposals.safe_nonce(session, vault.safe)
    safe_tx = SafeTx(safe=vault.safe, chain_id=session.chain_id, to=PRIME, value=value, data=b"",
                     operation=Operation.CALL, nonce=nonce)  # fmt: skip
    signature = verify_owner_signature(anvil_signer(1).sign_safe_tx(safe_tx), safe_tx.safe_tx_hash)
    data = proposals.exec_calldata(session, safe_tx, pack_signatures([signature]))
    return safe_tx, session.send(to=vault.safe, data=data, what="raw execution")


def test_each_custody_step_writes_its_entry_with_the_state_change(session, hot):
    proposal, receipt = transfer(session, hot)
    spare = proposals.propose_transfer(session, hot.id, to=PRIME, amount="2", proposer="bob")
    proposals.discard(session, spare)
    assert kinds(session) == ["vault_created", "proposal_created", "risk_decision", "risk_decision", "approval_signed",
                              "risk_decision", "execution", "proposal_created", "risk_decision",
                              "proposal_discarded"]  # fmt: skip
    entries = list(ledger_for(session.store).entries())
    created, _, at_propose, at_sign, approval, at_execute, execution, _, _, discarded = entries
    # every decision is linked to its proposal (safeTxHash + id) and names its stage and verdict
    for decision, stage in ((at_propose, "propose"), (at_sign, "sign"), (at_execute, "execute")):
        assert decision.refs == {"safe_tx_hash": proposal.safe_tx_hash}
        assert decision.payload["proposal"] == proposal.id and decision.payload["stage"] == stage
        assert decision.payload["verdict"] == "accept" and decision.payload["versions"]["engine"]
    assert (
        created.vault == "hot-ops" and created.payload["safe"] == hot.safe and created.refs["tx_hash"] == hot.created_tx
    )
    assert (
        approval.actor == approval.payload["signer"] == anvil_signer(1).address and approval.payload["via"] == "anvil"
    )
    assert execution.refs == {"safe_tx_hash": proposal.safe_tx_hash, "tx_hash": receipt.tx_hash,
                              "block": receipt.block_number}  # fmt: skip
    assert execution.payload["value"] == str(10**18) and execution.payload["success"] is True
    assert entries[1].actor == "alice" and discarded.refs["safe_tx_hash"] == spare.safe_tx_hash
    # a step that fails records nothing: executing again is refused before anything is written
    with pytest.raises(Exception, match="executed"):
        proposals.execute(session, proposals.get_proposal(session, proposal.id))
    assert len(entries) == ledger_for(session.store).size


def test_indexer_ingests_deposits_and_executions_idempotently(session, hot):
    proposal, receipt = transfer(session, hot)
    first = index_vaults(session)
    again = index_vaults(session)
    assert first[0].appended > 0 and again[0].appended == 0 and again[0].sync.logs == 0
    entries = [e for e in ledger_for(session.store).entries() if e.actor == "indexer"]
    deposits = [e for e in entries if e.kind == "deposit_observed"]
    assert sorted((d.payload["asset"], d.payload["amount"]) for d in deposits) == sorted(
        [("ETH", str(10 * 10**18)), (DEMO_TOKEN_ADDRESS.lower(), str(5_000 * 10**6))]
    )
    (observed,) = [e for e in entries if e.kind == "execution_observed"]
    assert observed.refs["safe_tx_hash"] == proposal.safe_tx_hash and observed.refs["tx_hash"] == receipt.tx_hash
    assert observed.payload["to"].lower() == PRIME.lower() and observed.payload["value"] == str(10**18)
    events = {e.payload["event"] for e in entries if e.kind == "chain_event"}
    assert {"SafeSetup", "CustodyGuardConfigured"} <= events


def test_verify_against_the_chain_finds_missing_and_mismatched_executions(session, hot):
    transfer(session, hot)
    report = audit_service.verify(store=session.store, chain=session.chain)
    assert report.exit_code == 0 and report.chain.executions_checked == 1 and report.chain.onchain_executions == 1
    _safe_tx, receipt = raw_execute(session, hot, 10**17)  # outside custody: not in the ledger
    report = audit_service.verify(store=session.store, chain=session.chain)
    assert report.exit_code == 3 and report.verdict == "chain_mismatch"
    (missing,) = report.chain.problems
    assert missing.code == "execution_missing" and receipt.tx_hash in missing.message
    index_vaults(session)  # the indexer brings it in: the ledger is complete again
    assert audit_service.verify(store=session.store, chain=session.chain).exit_code == 0
    # an execution entry that misstates the amount (validly appended, so not tampering): chain mismatch
    ledger = ledger_for(session.store)
    (real,) = [e for e in ledger.entries() if e.kind == "execution"]
    wrong = ledger.record("execution", actor=real.actor, vault=real.vault, chain_id=real.chain_id, refs=real.refs,
                          payload={**real.payload, "value": str(2 * 10**18)})  # fmt: skip
    report = audit_service.verify(store=session.store, chain=session.chain)
    assert report.exit_code == 3 and report.first_bad_sequence == wrong.seq
    (mismatch,) = report.chain.problems
    assert (
        mismatch.code == "calldata_mismatch"
        and "amount '2000000000000000000' vs chain '1000000000000000000'" in mismatch.message
    )


def test_bundle_verifies_offline_and_against_the_chain_and_catches_tampering(session, hot, tmp_path):
    snapshot = session.chain.snapshot()
    transfer(session, hot)
    index_vaults(session)
    key = audit_service.ledger_key(session.workspace)
    audit_service.head(session.store, lambda: key)
    audit_service.anchor(session, key)
    bundle = tmp_path / "audit.tar.gz"
    manifest = audit_service.export(session.store, "bundle", bundle)
    assert manifest["size"] == ledger_for(session.store).size
    offline = audit_service.verify(bundle=bundle)
    assert offline.exit_code == 0 and offline.chain is None
    online = audit_service.verify(bundle=bundle, chain=session.chain)
    assert online.exit_code == 0 and online.chain.anchors_checked == 1 and online.chain.executions_checked == 1
    contents = read_bundle(bundle)
    assert {"heads.json", "anchors.json", "proofs/consistency.json", "proofs/inclusion.jsonl",
            "contracts/LedgerAnchor.json", f"policies/{session.chain_id}-hot-ops.yaml"} <= set(contents.files)  # fmt: skip
    assert any(name.startswith("keys/ed25519-") for name in contents.files)
    # alter one entry in the bundle (and even fix the manifest hash): tampered, first bad entry named
    target = next(i for i, line in enumerate(contents.entries) if b'"value":"1000000000000000000"' in line)
    lines = contents.entries[:]
    lines[target] = lines[target].replace(b'"value":"1000000000000000000"', b'"value":"9000000000000000000"')
    assert lines[target] != contents.entries[target]
    forged = tmp_path / "forged.tar.gz"
    _rewrite(bundle, forged, {"entries.jsonl": b"".join(x + b"\n" for x in lines)})
    report = audit_service.verify(bundle=forged)
    assert report.exit_code == 2 and report.first_bad_sequence == target
    # the same bundle against a chain that no longer has the execution: chain mismatch
    session.chain.revert(snapshot)
    assert audit_service.verify(bundle=bundle, chain=session.chain).exit_code == 3


def _rewrite(source, target, replace: dict[str, bytes]) -> None:
    import hashlib

    with tarfile.open(source, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    files.update(replace)
    manifest = json.loads(files["manifest.json"])
    for name, data in replace.items():
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(target, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_policy_change_lifecycle_is_recorded(session, hot, tmp_path):
    text = (POLICIES / "hot.yaml").read_text().replace('per_tx_limit: "5"', 'per_tx_limit: "4"')
    (tmp_path / "hot-v2.yaml").write_text(text)
    proposal, op = change.apply_change(session, hot.id, tmp_path / "hot-v2.yaml")
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    change.execute(session, proposal.id)
    session.chain.rpc("evm_increaseTime", [3601])
    session.chain.mine()
    change.execute(session, proposal.id)
    recorded = [e for e in ledger_for(session.store).entries() if e.kind.startswith("policy_change")]
    assert [e.kind for e in recorded] == ["policy_change_proposed", "policy_change_scheduled", "policy_change_applied"]
    assert all(e.refs["op_id"] == op.op_id for e in recorded)
    assert (
        recorded[1].refs["tx_hash"] and recorded[2].refs["tx_hash"] and recorded[2].payload["new_guard"] == op.new_guard
    )
    second = tmp_path / "hot-v3.yaml"
    second.write_text(text.replace('per_tx_limit: "4"', 'per_tx_limit: "3"'))
    _p, op2 = change.apply_change(session, hot.id, second)
    change.cancel_change(session, hot.id, op2.op_id)
    assert kinds(session)[-3:] == ["policy_change_proposed", "proposal_discarded", "policy_change_cancelled"]
    assert audit_service.verify(store=session.store, chain=session.chain).exit_code == 0


def test_cli_head_proofs_anchor_verify_and_exports(session, hot, run_cli, tmp_path):
    transfer(session, hot)  # 7 entries: vault, proposal, risk decisions at propose/sign/execute, approval, execution
    head = run_cli("audit", "head", "--json")
    assert head.exit_code == 0, head.stderr
    first = json.loads(head.stdout)
    assert first["size"] == first["ledger_size"] == 7 and first["key_id"].startswith("ed25519:")
    transfer(session, hot, amount="2")
    second = json.loads(run_cli("audit", "head", "--json").stdout)
    assert second["size"] == 13 and second["current"]
    proof = json.loads(run_cli("audit", "proof", "--entry", "4", "--head", "7", "--json").stdout)
    assert proof["verified"] and proof["entry"]["kind"] == "approval_signed"
    consistency = json.loads(run_cli("audit", "consistency", "--from", "7", "--to", "13", "--json").stdout)
    assert consistency["verified"] and consistency["first_root"] == first["root"]
    # CT-style cadence: every append transaction signed a head, so the head of size 3 exists too
    assert json.loads(run_cli("audit", "consistency", "--from", "3", "--to", "13", "--json").stdout)["verified"]
    missing = run_cli("audit", "consistency", "--from", "14", "--to", "13", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"] == "AuditError"
    anchored = json.loads(run_cli("audit", "anchor", "--json").stdout)
    receipt = session.chain.w3.eth.get_transaction_receipt(anchored["tx_hash"])
    contract = session.contract("LedgerAnchor", anchored["contract"])
    (event,) = contract.events.LedgerAnchored().process_receipt(receipt)
    assert event["args"]["size"] == 13 and event["args"]["root"].hex() == second["root"]
    again = run_cli("audit", "anchor")
    assert again.exit_code == 1 and "already anchored a head of size 13" in again.stderr
    verified = run_cli("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.stdout
    data = json.loads(verified.stdout)
    assert data["verdict"] == "ok" and data["chain"]["anchors_checked"] == 1 and data["first_bad_sequence"] is None
    human = run_cli("audit", "verify")
    assert human.exit_code == 0 and "ok" in human.stdout
    text = run_cli("audit", "export", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 13 and list(rows[0]) == list(__import__("custody.audit.export", fromlist=["x"]).CSV_COLUMNS)
    assert rows[6]["kind"] == "execution" and rows[6]["amount"] == str(10**18) and rows[6]["success"] == "true"
    lines = run_cli("audit", "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(13))
    html = tmp_path / "report.html"
    assert run_cli("audit", "export", "--format", "html", "--out", str(html)).exit_code == 0
    page = html.read_text()
    assert "<svg class='chart'" in page and "Approvals per signer" in page and "hot-ops" in page
    assert "All 13 entries verified" in page and "against chain 31337" in page and "send 1 ETH to " + PRIME in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # opens offline
    bundle = tmp_path / "b.tar.gz"
    assert run_cli("audit", "export", "--format", "bundle", "--out", str(bundle)).exit_code == 0
    offline = run_cli("audit", "verify", "--bundle", str(bundle), "--json")
    assert offline.exit_code == 0 and json.loads(offline.stdout)["chain"] is None
    pinned = run_cli("audit", "verify", "--bundle", str(bundle), "--key", "ed25519:" + "00" * 32, "--json")
    assert pinned.exit_code == 2 and json.loads(pinned.stdout)["first_bad_sequence"] == 0
    log = json.loads(run_cli("audit", "log", "--last", "3", "--json").stdout)
    assert [e["seq"] for e in log["entries"]] == [10, 11, 12]
    key = json.loads(run_cli("audit", "key", "--json").stdout)
    assert key["key_id"] == first["key_id"] and "BEGIN PUBLIC KEY" in key["public_key_pem"]
    indexed = json.loads(run_cli("audit", "index", "--json").stdout)
    (vault,) = indexed["vaults"]
    assert vault["vault"] == "hot-ops" and vault["entries"] >= 4 and indexed["ledger_size"] == 13 + vault["entries"]
    assert json.loads(run_cli("audit", "index", "--json").stdout)["vaults"][0]["entries"] == 0


def test_a_workspace_on_postgresql_records_indexes_and_verifies(chain, postgres, tmp_path, run_cli):
    from custody.session import Session
    from custody.workspace import Workspace

    url = postgres.fresh_schema_url()
    workspace = Workspace(tmp_path / "pg-ws", db_url=url).ensure()
    try:
        session = Session(workspace=workspace, chain=chain)
        session.infrastructure()
        assert session.store.dialect == "postgresql"
        vault, _ = service.create_vault(session, POLICIES / "hot.yaml")
        session.send(to=vault.safe, value=10**19, what="fund")
        transfer(session, vault)
        index_vaults(session)
        assert kinds(session)[:7] == ["vault_created", "proposal_created", "risk_decision", "risk_decision",
                                      "approval_signed", "risk_decision", "execution"]  # fmt: skip
        assert "execution_observed" in kinds(session) and "deposit_observed" in kinds(session)
        env = {"CUSTODY_HOME": str(workspace.home), "CUSTODY_DB": url}
        result = run_cli("audit", "verify", "--json", env=env)
        assert result.exit_code == 0, result.stdout
        data = json.loads(result.stdout)
        assert data["chain"]["executions_checked"] == 1 and data["size"] == ledger_for(session.store).size
        assert not (workspace.home / "custody.db").exists()  # everything went to PostgreSQL
    finally:
        workspace.close()


def test_heads_can_be_anchored_as_eas_timestamps(session, hot, tmp_path):
    from custody.attest.badges import context
    from custody.audit.anchor import eas_reference

    transfer(session, hot)
    key = audit_service.ledger_key(session.workspace)
    head = audit_service.head(session.store, lambda: key)
    done = audit_service.anchor(session, key, method="eas_timestamp")
    eas = context(session)
    assert done.contract == eas.address and done.reference == "0x" + eas_reference(head).hex()
    stamped = session.chain.call(eas.contract.functions.getTimestamp(eas_reference(head)).call)
    assert stamped == session.chain.w3.eth.get_block(done.block_number)["timestamp"]
    with pytest.raises(AuditError, match="timestamped on EAS .* already"):
        audit_service.anchor(session, key, method="eas_timestamp")

    bundle = tmp_path / "audit.tar.gz"
    audit_service.export(session.store, "bundle", bundle)
    online = audit_service.verify(bundle=bundle, chain=session.chain)
    assert online.exit_code == 0 and online.chain.anchors_checked == 1
    # an anchor record claiming a different head is caught
    anchors = json.loads(read_bundle(bundle).files["anchors.json"])
    anchors[0]["head"]["size"] += 1
    forged = tmp_path / "forged.tar.gz"
    _rewrite(bundle, forged, {"anchors.json": json.dumps(anchors).encode()})
    problems = audit_service.verify(bundle=forged, chain=session.chain).chain.problems
    assert [p.code for p in problems] == ["anchor_mismatch"] and "EAS timestamp of head size" in problems[0].message


def test_emergency_exit_steps_are_recorded_with_their_transactions(session):
    from custody.vault import exit as vault_exit
    from tests.resilience_helpers import COUNCIL, CUSTODIAN, OWNERS, advance, resilient_vault, sign_exit

    vault = resilient_vault(session)
    first = vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    cancelled = vault_exit.cancel_as_owner(session, vault.id, anvil_signer(OWNERS[0]))
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    advance(session, 2 * 3600)
    final = vault_exit.finalize(session, vault.id)
    exits = [e for e in ledger_for(session.store).entries() if e.kind.startswith("exit_")]
    assert [e.kind for e in exits] == ["exit_signed", "exit_signed", "exit_initiated", "exit_cancelled",
                                       "exit_signed", "exit_signed", "exit_initiated", "exit_finalized"]  # fmt: skip
    signed = [e for e in exits if e.kind == "exit_signed"]
    assert [e.actor for e in signed[:2]] == [anvil_signer(i).address for i in COUNCIL[:2]]
    initiated = exits[2]
    assert initiated.refs["tx_hash"] == first.tx_hash and initiated.payload["custodian"] == CUSTODIAN
    assert sorted(initiated.payload["signers"]) == sorted(anvil_signer(i).address for i in COUNCIL[:2])
    assert exits[3].refs["tx_hash"] == cancelled.tx_hash and exits[3].actor == anvil_signer(OWNERS[0]).address
    assert [e.payload["nonce"] for e in exits] == [0, 0, 0, 0, 1, 1, 1, 1]  # each step names its module nonce
    assert exits[-1].refs["tx_hash"] == final.tx_hash and exits[-1].payload["nonce"] == 1
    assert all(e.payload["safe"] == vault.safe and e.payload["exit_module"] == vault.exit_module for e in exits)
    # the indexer sees the exit on chain too: the module path's events, each asset moved to the custodian
    index_vaults(session)
    events = [(e.payload["event"], e.payload["fields"]) for e in ledger_for(session.store).entries()
              if e.kind == "chain_event" and e.refs.get("tx_hash") == final.tx_hash]  # fmt: skip
    names = [n for n, _f in events]
    assert {"ExitFinalized", "ExecutionFromModuleSuccess", "SafeModuleTransaction"} <= set(names)
    moved = [f for n, f in events if n == "ExitAssetMoved"]
    assert len(moved) == 2 and all(CUSTODIAN.lower() in json.dumps(f).lower() for f in moved)
    assert audit_service.verify(store=session.store, chain=session.chain).exit_code == 0
