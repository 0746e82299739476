"""Reorgs after an indexed execution: the ledger keeps every entry, supersedes the reorged-out ones with
explicit correction entries, and verifies (integrity and chain) afterwards — depths 1 to 5, on a brand-new
Anvil (see conftest: ``anvil_reorg`` needs a chain without ``evm_revert`` history)."""

from __future__ import annotations

from custody.audit import service as audit_service
from custody.audit.indexer import index_vaults
from custody.audit.record import ledger_for
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import proposals, service
from tests.conftest import POLICIES

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def test_reorgs_of_depth_1_to_5_end_in_a_verifying_ledger_with_corrections(fresh_session):
    session = fresh_session
    vault, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=vault.safe, value=15 * 10**18, what="fund")
    kept = proposals.propose_transfer(session, vault.id, to=PRIME, amount="1")
    proposals.sign(session, proposals.get_proposal(session, kept.id), anvil_signer(1))
    proposals.execute(session, proposals.get_proposal(session, kept.id))  # deep enough to survive every reorg below
    for _ in range(6):
        session.chain.mine()
    ledger = ledger_for(session.store)
    for depth in range(1, 6):
        proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount=f"0.{depth}")
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
        receipt = proposals.execute(session, proposals.get_proposal(session, proposal.id))
        for _ in range(depth - 1):
            session.chain.mine()
        index_vaults(session)
        before = ledger.size
        executed = [e for e in ledger.entries() if e.refs.get("tx_hash") == receipt.tx_hash]
        assert {e.kind for e in executed} == {"execution", "execution_observed"}
        # replace the last `depth` blocks: the execution vanishes, an unrelated transfer lands instead
        replacement = {"from": anvil_address(8), "to": anvil_address(9), "value": hex(1), "gas": hex(21_000)}
        session.chain.rpc("anvil_reorg", [depth, [[replacement, 0]]])
        assert session.chain.rpc("eth_getTransactionReceipt", [receipt.tx_hash]) is None
        (result,) = index_vaults(session)
        assert result.sync.reorg is not None and result.corrections == 2
        entries = list(ledger.entries())
        assert [e.seq for e in entries[:before]] == list(range(before))  # nothing deleted or rewritten
        corrections = [e for e in entries[before:] if e.kind == "correction"]
        assert sorted(c.refs["supersedes"] for c in corrections) == sorted(e.seq for e in executed)
        assert all(c.payload["first_invalid_block"] <= receipt.block_number for c in corrections)
        report = audit_service.verify(store=session.store, chain=session.chain)
        assert report.exit_code == 0, report.as_dict()
        assert report.chain.onchain_executions == report.chain.executions_checked == 1  # only the kept one
        # re-running the indexer changes nothing
        assert index_vaults(session)[0].appended == 0
