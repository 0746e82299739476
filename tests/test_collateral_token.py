"""CollateralToken on a real chain: authority, record integrity, events, ids — and the issuer vault path."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from web3.logs import DISCARD

from custody.chain.logs import decode_logs
from custody.exceptions import TransactionFailed
from custody.harness import scenario
from custody.reconcile import issuance, token
from custody.reconcile.barlist import bar_id
from custody.reconcile.index import layouts
from custody.signers.local import anvil_signer
from custody.vault import service
from tests.collateral_helpers import ISSUER, deploy, units
from tests.conftest import POLICIES

ROWS = scenario.generate_rows(4, seed=3)


def test_version_roles_and_hash_helpers_match_python(session):
    issuer = deploy(session)
    c = session.contract("CollateralToken", issuer.token)
    assert c.functions.VERSION().call() == "1.0.0"
    assert c.functions.decimals().call() == 18
    assert c.functions.hasRole(token.ISSUER_ROLE, ISSUER.address).call()
    assert c.functions.ISSUER_ROLE().call() == keccak(text="ISSUER_ROLE")
    assert c.functions.barId("VALCAMBI", "AB-123/4").call() == bar_id("VALCAMBI", "AB-123/4")
    ids, weights = [issuance.row_bar_id(r) for r in ROWS], [issuance.row_units(r) for r in ROWS]
    assert c.functions.batchHash(ids, weights).call() == token.batch_hash(ids, weights)


def test_allocate_and_mint_emit_citing_events_and_update_counters(session):
    issuer = deploy(session)
    batch, allocated = issuer.allocate(ROWS)
    minted = issuer.mint(units(ROWS), batch)
    c = session.contract("CollateralToken", issuer.token)
    assert c.functions.allocatedFineWeight().call() == units(ROWS)
    assert c.functions.totalSupply().call() == units(ROWS)
    decoded = decode_logs(
        [{**log, "blockNumber": hex(log["blockNumber"]), "logIndex": hex(log["logIndex"]),
          "transactionHash": "0x" + bytes(log["transactionHash"]).hex(), "blockHash": "0x" + bytes(log["blockHash"]).hex(),
          "topics": ["0x" + bytes(t).hex() for t in log["topics"]], "data": "0x" + bytes(log["data"]).hex()}
         for log in allocated.logs + minted.logs],
        layouts(),
    )  # fmt: skip
    assert [d.event for d in decoded] == ["BarAllocated"] * 4 + ["BatchAllocated", "Transfer", "Minted"]
    assert [d.values for d in decoded[:4]] == [(issuance.row_bar_id(r), batch, issuance.row_units(r)) for r in ROWS]
    assert decoded[4].values == (batch, 4, units(ROWS))
    assert decoded[6].values == (ISSUER.address.lower(), batch, units(ROWS))
    # differential check of the slicing decoder against web3's event machinery on the same receipt
    web3_events = c.events.BarAllocated().process_receipt(allocated.raw, errors=DISCARD)
    assert [(e["args"]["barId"], e["args"]["batch"], e["args"]["fineWeight"]) for e in web3_events] == [
        d.values for d in decoded[:4]
    ]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: token.allocate_data([b"\x00" * 32], [5]), "CollateralInvalidBar(index=0, barId=0x" + "00" * 32 + ", fineWeight=5)"),
        (lambda: token.allocate_data([b"\x07" * 32], [0]), "CollateralInvalidBar(index=0, barId=0x" + "07" * 32 + ", fineWeight=0)"),
        (lambda: token.mint_data(ISSUER.address, 10, b"\x00" * 32), "CollateralMissingProvenance(amount=10)"),
        (lambda: token.mint_data(ISSUER.address, 0, b"\x01" * 32), "CollateralZeroAmount(provenance=0x" + "01" * 32 + ")"),
        (lambda: token.deallocate_data([b"\x07" * 32], [9]), "CollateralDeallocationExceedsAllocated(fineWeight=9, allocated=0)"),
    ],
)  # fmt: skip
def test_malformed_records_revert_with_specific_errors(session, call, error):
    issuer = deploy(session)
    with pytest.raises(TransactionFailed) as caught:
        issuer.call(call())
    assert error in str(caught.value)


def test_batch_arrays_must_pair_up(session):
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    issuer = deploy(session)
    data = function_signature_to_4byte_selector("allocate(bytes32[],uint256[])") + encode(
        ["bytes32[]", "uint256[]"], [[b"\x01" * 32, b"\x02" * 32], [5]]
    )
    with pytest.raises(TransactionFailed, match=r"CollateralInvalidBatch\(barCount=2, weightCount=1\)"):
        issuer.call(data)
    empty = function_signature_to_4byte_selector("allocate(bytes32[],uint256[])") + encode(
        ["bytes32[]", "uint256[]"], [[], []]
    )
    with pytest.raises(TransactionFailed, match=r"CollateralInvalidBatch\(barCount=0, weightCount=0\)"):
        issuer.call(empty)


def test_only_the_issuer_mints_burns_and_allocates(session):
    issuer = deploy(session)
    outsider = anvil_signer(5)
    for data in (token.allocate_data([b"\x01" * 32], [5]), token.mint_data(outsider.address, 5, b"\x01" * 32)):
        with pytest.raises(TransactionFailed, match=rf"CollateralNotIssuer\(caller={outsider.address.lower()}\)"):
            issuer.call(data, signer=outsider)


def test_the_contract_records_what_the_reconciler_must_catch(session):
    """Deliberately not prevented on-chain: a bar allocated twice, a mint citing an unknown batch."""
    issuer = deploy(session)
    _batch, _ = issuer.allocate(ROWS[:1])
    issuer.allocate(ROWS[:1])  # the same bar again
    issuer.mint(10**18, keccak(text="not a batch"))
    c = session.contract("CollateralToken", issuer.token)
    assert c.functions.allocatedFineWeight().call() == 2 * units(ROWS[:1])
    assert c.functions.totalSupply().call() == 10**18


def test_issuer_vault_path_mints_through_the_safe(session, tmp_path):
    record, deployed = token.create_issuer_vault(
        session, POLICIES / "hot.yaml", tmp_path, name="issuer", token_name="Vault Gold", symbol="vGOLD"
    )
    assert (deployed.address, token.ISSUER_FUNCTIONS[2]) in {
        (c.target, c.signature) for c in record.policy().contract_calls
    }
    issued = issuance.allocate_and_mint(
        session, record.name, deployed.address, ROWS, to=ISSUER.address, signers=[anvil_signer(1)]
    )
    c = session.contract("CollateralToken", deployed.address)
    assert c.functions.totalSupply().call() == units(ROWS) == issued.fine_weight
    assert c.functions.hasRole(c.functions.DEFAULT_ADMIN_ROLE().call(), record.timelock).call()
    # a vault without the role is refused before anything is proposed, with the token's own error
    other, _ = service.create_vault(session, POLICIES / "hot.yaml", name="not-issuer")
    with pytest.raises(TransactionFailed, match=rf"CollateralNotIssuer\(caller={other.safe.lower()}\)"):
        token.issue(session, other.name, deployed.address, token.mint_data(ISSUER.address, 1, issued.batch),
                signers=[anvil_signer(1)], what="minting from the wrong vault")  # fmt: skip
