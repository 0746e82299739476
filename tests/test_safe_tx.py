"""SafeTx hashing agrees with safe-eth-py and with the deployed Safe; owner signatures are strict."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safe_eth.safe.safe_tx import SafeTx as ReferenceSafeTx

from custody.exceptions import SignatureError
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import OwnerSignature, pack_signatures, verify_owner_signature
from custody.signers.ecdsa import HALF_N, SECP256K1_N, EcdsaSignature
from custody.signers.local import anvil_signer
from custody.types import Operation
from custody.vault.proposals import onchain_hash
from custody.vault.service import create_vault
from tests.conftest import POLICIES

addresses = st.binary(min_size=20, max_size=20).map(lambda b: __import__("eth_utils").to_checksum_address(b))
uint = st.integers(min_value=0, max_value=2**256 - 1)

safe_txs = st.builds(
    SafeTx,
    safe=addresses,
    chain_id=st.integers(min_value=1, max_value=2**64),
    to=addresses,
    value=uint,
    data=st.binary(max_size=200),
    operation=st.sampled_from(list(Operation)),
    nonce=uint,
    safe_tx_gas=uint,
    base_gas=uint,
    gas_price=uint,
    gas_token=addresses,
    refund_receiver=addresses,
)


@settings(max_examples=200, deadline=None)
@given(safe_txs)
def test_hash_matches_safe_eth_py(tx):
    reference = ReferenceSafeTx(
        None, tx.safe, tx.to, tx.value, tx.data, int(tx.operation), tx.safe_tx_gas, tx.base_gas, tx.gas_price,
        tx.gas_token, tx.refund_receiver, safe_nonce=tx.nonce, safe_version="1.4.1", chain_id=tx.chain_id,
    )  # fmt: skip
    assert bytes(reference.safe_tx_hash) == tx.safe_tx_hash


SAFE = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
TO = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("value", -1, "-1 is not a uint256"),
        ("value", 2**256, "is not a uint256"),
        ("nonce", True, "True is not a uint256"),
        ("operation", 256, "256 is not a uint8"),
        ("to", TO[:-1], "is not a 0x-prefixed 20-byte hex address"),
        ("to", "0x" + "g" * 40, "non-hexadecimal"),
        ("gas_token", TO[:-1] + "F", "not a valid EIP-55 checksum"),
    ],
)
def test_fields_that_do_not_fit_their_abi_type_are_refused_not_wrapped(field, value, message):
    fields = {
        "safe": SAFE,
        "chain_id": 31337,
        "to": TO,
        "value": 1,
        "data": b"",
        "operation": Operation.CALL,
        "nonce": 0,
    }
    with pytest.raises(ValueError, match=message):
        SafeTx(**{**fields, field: value}).safe_tx_hash  # noqa: B018


def test_one_letter_case_addresses_hash_like_their_checksummed_form():
    tx = SafeTx(safe=SAFE, chain_id=31337, to=TO, value=1, data=b"", operation=Operation.CALL, nonce=0)
    lower = SafeTx(safe=SAFE.lower(), chain_id=31337, to=TO.upper().replace("0X", "0x"), value=1, data=b"",
                   operation=Operation.CALL, nonce=0)  # fmt: skip
    assert lower.safe_tx_hash == tx.safe_tx_hash


@pytest.fixture
def vault(session):
    record, _ = create_vault(session, POLICIES / "cold.yaml")
    return record


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tx=safe_txs)
def test_hash_matches_the_deployed_safe(session, vault, tx):
    bound = SafeTx(
        safe=vault.safe, chain_id=session.chain_id, to=tx.to, value=tx.value, data=tx.data, operation=tx.operation,
        nonce=tx.nonce, safe_tx_gas=tx.safe_tx_gas, base_gas=tx.base_gas, gas_price=tx.gas_price,
        gas_token=tx.gas_token, refund_receiver=tx.refund_receiver,
    )  # fmt: skip
    assert onchain_hash(session, bound) == bound.safe_tx_hash


SAMPLE = SafeTx(
    safe="0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", chain_id=31337,
    to="0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", value=10**18, data=b"", operation=Operation.CALL, nonce=7,
)  # fmt: skip


def _blob(index=1):
    return anvil_signer(index).sign_safe_tx(SAMPLE)


def test_signature_recovers_low_s_and_eip712_kind():
    sig = verify_owner_signature(_blob(), SAMPLE.safe_tx_hash)
    assert sig.signer == anvil_signer(1).address
    assert int.from_bytes(sig.signature[32:64], "big") <= HALF_N
    assert sig.kind == "eip712"


def test_high_s_twin_normalises_to_the_same_bytes():
    blob = _blob()
    r, s, v = blob[:32], int.from_bytes(blob[32:64], "big"), blob[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    assert verify_owner_signature(twin, SAMPLE.safe_tx_hash) == verify_owner_signature(blob, SAMPLE.safe_tx_hash)


def test_eth_sign_signatures_are_understood():
    from custody.safe.signatures import eth_sign_digest

    ecdsa = anvil_signer(2)._checked(eth_sign_digest(SAMPLE.safe_tx_hash))
    blob = ecdsa.r.to_bytes(32, "big") + ecdsa.s.to_bytes(32, "big") + bytes([ecdsa.v + 4])
    sig = verify_owner_signature(blob, SAMPLE.safe_tx_hash)
    assert sig.signer == anvil_signer(2).address and sig.kind == "eth_sign"
    assert sig.signature == blob  # kept as signed (v 31/32), for the Safe to verify as eth_sign


def _with(blob, *, v=None, r=None, s=None):
    out = bytearray(blob)
    if v is not None:
        out[64] = v
    if r is not None:
        out[:32] = r.to_bytes(32, "big")
    if s is not None:
        out[32:64] = s.to_bytes(32, "big")
    return bytes(out)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda b: b[:64], "65 bytes, got 64"),
        (lambda b: b + b"\x00", "65 bytes, got 66"),
        (lambda b: b"", "65 bytes, got 0"),
        (lambda b: _with(b, v=0), "contract or approved-hash signature"),
        (lambda b: _with(b, v=1), "contract or approved-hash signature"),
        (lambda b: _with(b, v=29), "not a valid Safe ECDSA v"),
        (lambda b: _with(b, v=255), "not a valid Safe ECDSA v"),
        (lambda b: _with(b, r=0), "r=0 is out of range"),
        (lambda b: _with(b, s=0), "s=0 is out of range"),
        (lambda b: _with(b, r=SECP256K1_N), "r=n is out of range"),
        (lambda b: _with(b, s=SECP256K1_N), "s=n is out of range"),
    ],
)
def test_malformed_blobs_are_rejected_specifically(mutate, message):
    with pytest.raises(SignatureError, match=message):
        verify_owner_signature(mutate(_blob()), SAMPLE.safe_tx_hash)


def test_wrong_digest_recovers_someone_else():
    other = SafeTx(**{**SAMPLE.__dict__, "nonce": 8, "_hash_cache": {}})
    assert verify_owner_signature(_blob(), other.safe_tx_hash).signer != anvil_signer(1).address


def test_pack_sorts_by_owner_and_refuses_duplicates():
    a = verify_owner_signature(_blob(1), SAMPLE.safe_tx_hash)
    b = verify_owner_signature(_blob(2), SAMPLE.safe_tx_hash)
    packed = pack_signatures([a, b])
    first, second = sorted([a, b], key=lambda x: int(x.signer, 16))
    assert packed == first.signature + second.signature
    with pytest.raises(SignatureError, match="two signatures from"):
        pack_signatures([a, OwnerSignature(a.signer, a.signature)])


def test_ecdsa_v_range_is_checked():
    with pytest.raises(SignatureError, match="v must be 27 or 28"):
        EcdsaSignature(1, 1, 30)
