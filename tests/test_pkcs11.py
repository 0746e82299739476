"""PKCS#11 on a real SoftHSM2 token: keys generated on the token, an HSM owner in a 2-of-3 Safe that executes on
Anvil (through the CLI), and every failure mapped to its own error."""

from __future__ import annotations

import json

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from custody.exceptions import DeviceNotFound, KeyNotFound, SignerError, SignerLocked, SignerUriError
from custody.signers.base import personal_message_digest
from custody.signers.local import anvil_signer
from custody.signers.pkcs11 import Pkcs11Uri, find_token, load_library, open_session
from custody.signers.registry import SignerContext, open_signer
from tests.signer_fixtures import HSM_KEY, policy_with_owners

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def test_hsm_owner_signs_a_2_of_3_transfer_that_executes(run_cli, session, hsm, tmp_path):
    created = run_cli("key", "new", "--hsm", "--token", hsm.label, "officer-hsm", "--json")
    assert created.exit_code == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["uri"] == f"pkcs11:token={hsm.label};object=officer-hsm"
    listed = json.loads(run_cli("key", "list", "--token", hsm.label, "--json").stdout)
    assert {"name": "officer-hsm", "address": key["address"], "uri": key["uri"]} in listed

    policy = policy_with_owners(
        tmp_path, [key["address"], anvil_signer(2).address, anvil_signer(3).address], threshold=2, name="hsm-vault"
    )
    assert run_cli("vault", "create", str(policy)).exit_code == 0
    vault_safe = json.loads(run_cli("vault", "show", "hsm-vault", "--json").stdout)["safe"]
    session.send(to=vault_safe, value=10**18, what="fund")
    proposed = run_cli(
        "tx", "propose", "hsm-vault", "--to", PRIME_BROKER, "--amount", "0.5", "--proposer", "anvil:5", "--json"
    )
    assert proposed.exit_code == 0, proposed.stderr

    signed = run_cli("tx", "sign", "1", "--signer", key["uri"], "--json")
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(signed.stdout)["signer"] == key["address"]
    assert run_cli("tx", "sign", "1", "--signer", "anvil:2").exit_code == 0
    executed = run_cli("tx", "execute", "1", "--json")
    assert executed.exit_code == 0, executed.stderr
    shown = json.loads(run_cli("tx", "show", "1", "--json").stdout)
    assert shown["state"] == "executed"
    assert {s["signer"] for s in shown["signatures"]} == {key["address"], anvil_signer(2).address}
    assert session.chain.w3.eth.get_balance(vault_safe) == 10**18 - 5 * 10**17


def test_private_key_is_sensitive_and_not_extractable(hsm):
    token = find_token(load_library(), hsm.label)
    with open_session(token, hsm.label, lambda _p: hsm.pin_file.read_text().strip()) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=HSM_KEY)
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]


def test_wrong_pin_is_locked_and_never_echoed(softhsm):
    signer = open_signer(
        f"pkcs11:token={softhsm.pin_label};object={HSM_KEY}", SignerContext(pin_source=lambda _p: "000999")
    )
    with pytest.raises(SignerLocked, match=f"wrong PIN for PKCS#11 token '{softhsm.pin_label}'") as info:
        _ = signer.address
    assert "000999" not in str(info.value) and "000999" not in repr(info.value)


def test_pin_from_a_file_named_in_the_uri(softhsm):
    uri = f"pkcs11:token={softhsm.pin_label};object={HSM_KEY}?pin-source=file:{softhsm.pin_file}"
    signer = open_signer(uri)
    try:
        assert signer.sign_message(b"x").recover(personal_message_digest(b"x")) == signer.address
        assert "pin-source" not in signer.uri
    finally:
        signer.close()


def test_missing_token_key_and_module_are_distinguished(hsm, monkeypatch):
    with pytest.raises(
        DeviceNotFound,
        match=r"no PKCS#11 token labelled 'absent' \(tokens present: custody-canary, custody-pin, custody-test\)",
    ):
        open_signer("pkcs11:token=absent;object=x")
    with pytest.raises(KeyNotFound, match="no secp256k1 key pair labelled 'nope' on PKCS#11 token 'custody-test'"):
        _ = open_signer(f"pkcs11:token={hsm.label};object=nope").address
    monkeypatch.setenv("CUSTODY_PKCS11_MODULE", "/nonexistent/libhsm.so")
    with pytest.raises(DeviceNotFound, match="PKCS#11 module /nonexistent/libhsm.so does not exist"):
        open_signer(f"pkcs11:token={hsm.label};object={HSM_KEY}")


@pytest.mark.parametrize(
    "uri,message",
    [
        ("pkcs11:token=t;object=k;pin-value=1234", "a PIN in the pkcs11 URI is refused"),
        ("pkcs11:token=t;object=k?pin-value=1234", "a PIN in the pkcs11 URI is refused"),
        ("pkcs11:token=t", "needs token=LABEL and object=KEY"),
        ("pkcs11:token=t;object=k;colour=red", "unknown pkcs11 URI attribute 'colour'"),
        ("pkcs11:token=t;object=k?pin-source=env:PIN", "pin-source must be a file: URI"),
    ],
)
def test_uri_errors(uri, message):
    with pytest.raises(SignerUriError, match=message):
        if "pin-source=env" in uri:
            from custody.signers.pkcs11 import _pin_source_from_uri

            _pin_source_from_uri(Pkcs11Uri.parse(uri.split(":", 1)[1]).pin_source)
        else:
            Pkcs11Uri.parse(uri.split(":", 1)[1])


def test_percent_encoded_labels_and_duplicate_names(hsm, run_cli):
    assert Pkcs11Uri.parse("token=my%20token;object=a%3Bb") == Pkcs11Uri("my token", "a;b")
    clash = run_cli("key", "new", "--hsm", "--token", hsm.label, HSM_KEY)
    assert clash.exit_code == 1 and "holds a key labelled 'conformance' already" in clash.stderr
    half = run_cli("key", "new", "--token", hsm.label, "x")
    assert half.exit_code == 1 and "--hsm needs --token" in half.stderr
    with pytest.raises(SignerError):
        from custody.signers.pkcs11 import generate_key

        generate_key(hsm.label, HSM_KEY)
