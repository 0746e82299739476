"""A named set of 20 malformed or misused owner signatures, each rejected with its own message — by the
verifier and through `custody tx import-signature` on a real proposal (nothing gets stored)."""

from __future__ import annotations

import json

import pytest

from custody.exceptions import SignatureError
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import verify_owner_signature
from custody.signers.ecdsa import SECP256K1_N
from custody.signers.local import anvil_signer
from custody.vault import offline, proposals, service
from tests.conftest import POLICIES

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def _with(blob: bytes, *, v=None, r=None, s=None) -> bytes:
    out = bytearray(blob)
    if v is not None:
        out[64] = v
    if r is not None:
        out[:32] = r.to_bytes(32, "big")
    if s is not None:
        out[32:64] = s.to_bytes(32, "big")
    return bytes(out)


def _twin(blob: bytes) -> bytes:
    return _with(blob, s=SECP256K1_N - int.from_bytes(blob[32:64], "big"), v=55 - blob[64])


def _other(tx: SafeTx, **changes) -> SafeTx:
    return SafeTx(**{**{k: v for k, v in tx.__dict__.items() if k != "_hash_cache"}, **changes})


# name -> (make(blob of owner 1, the proposal's SafeTx) -> bad blob, expected message, checked by the verifier alone?)
CASES = {
    "truncated_to_64_bytes": (lambda b, t: b[:64], "a Safe owner signature is 65 bytes, got 64", True),
    "truncated_to_1_byte": (lambda b, t: b[:1], "a Safe owner signature is 65 bytes, got 1", True),
    "empty": (lambda b, t: b"", "a Safe owner signature is 65 bytes, got 0", True),
    "one_byte_too_long": (lambda b, t: b + b"\x00", "a Safe owner signature is 65 bytes, got 66", True),
    "two_signatures_concatenated": (lambda b, t: b + b, "a Safe owner signature is 65 bytes, got 130", True),
    "v0_contract_signature": (lambda b, t: _with(b, v=0), "signature v=0 is a contract or approved-hash signature", True),
    "v1_approved_hash": (lambda b, t: _with(b, v=1), "signature v=1 is a contract or approved-hash signature", True),
    "v29": (lambda b, t: _with(b, v=29), "signature v=29 is not a valid Safe ECDSA v (27, 28, 31 or 32)", True),
    "v33": (lambda b, t: _with(b, v=33), "signature v=33 is not a valid Safe ECDSA v (27, 28, 31 or 32)", True),
    "v255": (lambda b, t: _with(b, v=255), "signature v=255 is not a valid Safe ECDSA v (27, 28, 31 or 32)", True),
    "r_zero": (lambda b, t: _with(b, r=0), "signature r=0 is out of range (must be 1..n-1)", True),
    "s_zero": (lambda b, t: _with(b, s=0), "signature s=0 is out of range (must be 1..n-1)", True),
    "r_equals_curve_order": (lambda b, t: _with(b, r=SECP256K1_N), "signature r=n is out of range (must be 1..n-1)", True),
    "s_equals_curve_order": (lambda b, t: _with(b, s=SECP256K1_N), "signature s=n is out of range (must be 1..n-1)", True),
    "r_all_ones": (lambda b, t: _with(b, r=2**256 - 1), f"signature r={2**256 - 1:#x} is out of range (must be 1..n-1)", True),
    "wrong_signer_not_an_owner": (lambda b, t: anvil_signer(7).sign_safe_tx(t), f"the signature recovers to {anvil_signer(7).address}, which is not an owner of vault", False),
    "signed_for_another_nonce": (lambda b, t: anvil_signer(1).sign_safe_tx(_other(t, nonce=t.nonce + 1)), f"is owner {anvil_signer(1).address}'s signature of this transaction with nonce 1, but this transaction has nonce 0", False),
    "signed_for_another_chain_id": (lambda b, t: anvil_signer(1).sign_safe_tx(_other(t, chain_id=1)), f"is owner {anvil_signer(1).address}'s signature of this transaction for chain id 1, but vault", False),
    "eip712_signature_marked_eth_sign": (lambda b, t: _with(b, v=b[64] + 4), "is marked eth_sign (v=3", False),
    "high_s_duplicate_of_stored": (lambda b, t: _twin(b), "is a high-s re-encoding of", False),
}  # fmt: skip


def test_the_set_has_twenty_distinct_cases():
    assert len(CASES) == 20


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_verifier_rejects_specifically(name):
    tx = SafeTx(safe="0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", chain_id=31337, to=PRIME_BROKER, value=1, data=b"",
                operation=0, nonce=3)  # fmt: skip
    make, message, _ = CASES[name]
    with pytest.raises(SignatureError) as info:
        verify_owner_signature(make(anvil_signer(1).sign_safe_tx(tx), tx), tx.safe_tx_hash)
    assert message in str(info.value)


@pytest.mark.parametrize("blob", ["0x" + "11" * 65, "1" * 65, None], ids=["hex_text", "65_characters", "none"])
def test_a_signature_that_is_not_bytes_is_named_so(blob):
    with pytest.raises(SignatureError, match="^signature must be bytes$"):
        verify_owner_signature(blob, b"\x00" * 32)  # type: ignore[arg-type]


def test_import_signature_rejects_every_case(run_cli, session, tmp_path):
    vault, _ = service.create_vault(session, POLICIES / "cold.yaml")
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="1")
    good = anvil_signer(1).sign_safe_tx(proposal.safe_tx)
    proposals.add_signature(session, proposal, good, source="test")  # stored, so its high-s twin is a duplicate
    assert proposal.safe_tx.nonce == 0
    messages: dict[str, str] = {}
    for name, (make, message, _) in CASES.items():
        doc = offline.signature_document(proposal.safe_tx, anvil_signer(1).address, b"")
        del doc["sender"]
        doc["signature"] = "0x" + make(good, proposal.safe_tx).hex()
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        result = run_cli("tx", "import-signature", str(path))
        assert result.exit_code == 1, name
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
        messages[name] = result.stderr.strip()
    # every case says why in its own words (20 distinct messages)
    assert len(set(messages.values())) == len(CASES) == 20, messages
    stored = proposals.get_proposal(session, proposal.id).signatures
    assert [(s.signer, s.signature) for s in stored] == [(anvil_signer(1).address, good)]
