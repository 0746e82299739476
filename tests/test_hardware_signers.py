"""Ledger and Trezor through their wire protocols (device doubles): what the device shows, blind mode only on
request, and each failure — rejected, locked, app closed, absent — as its own error, also through the CLI."""

from __future__ import annotations

import json
import logging

import pytest

from custody.exceptions import DeviceNotFound, SignerLocked, UnsupportedOperation, UserRejected
from custody.safe.safe_tx import SafeTx
from custody.signers.ledger import LedgerSigner
from custody.signers.local import anvil_signer
from custody.signers.registry import SignerContext, open_signer
from custody.types import Operation
from custody.vault import proposals, service
from tests.devices import keys
from tests.devices.ledger_double import LedgerDouble
from tests.signer_fixtures import policy_with_owners

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
PATH = "m/44'/60'/0'/0/0"
TX = SafeTx(
    safe="0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", chain_id=31337, to=PRIME_BROKER, value=3 * 10**18,
    data=bytes.fromhex("a9059cbb") + bytes(64), operation=Operation.DELEGATECALL, nonce=42,
)  # fmt: skip


def _fields(screen: dict) -> dict[str, str]:
    return dict(screen["fields"])


@pytest.mark.parametrize("device", ["ledger", "trezor"])
def test_device_shows_every_safe_tx_field_and_the_hashes_we_show(device, request):
    double = request.getfixturevalue(device)
    signer = open_signer(f"{device}:{PATH.removeprefix('m/') if device == 'ledger' else PATH}")
    signer.sign_safe_tx(TX)
    screen = double.screens[-1]
    assert screen["mode"] == "full" and screen["primary"] == "SafeTx"
    shown = _fields(screen)
    assert shown["SafeTx.to"] == PRIME_BROKER
    assert shown["SafeTx.value"] == str(3 * 10**18)
    assert shown["SafeTx.data"] == "0x" + TX.data.hex()
    assert shown["SafeTx.operation"] == "1"
    assert shown["SafeTx.nonce"] == "42"
    assert shown["domain.chainId"] == "31337" and shown["domain.verifyingContract"] == TX.safe
    # the hashes the device computed itself are the ones `custody tx show` prints
    assert screen["domain_hash"] == TX.domain_separator and screen["message_hash"] == TX.message_hash


@pytest.mark.parametrize("device", ["ledger", "trezor"])
def test_blind_signing_only_when_asked_and_warned(device, request, caplog):
    double = request.getfixturevalue(device)
    uri = "ledger:44'/60'/0'/0/0" if device == "ledger" else f"trezor:{PATH}"
    open_signer(uri).sign_safe_tx(TX)
    assert double.screens[-1]["mode"] == "full"
    with caplog.at_level(logging.WARNING):
        blob = open_signer(uri, SignerContext(blind=True)).sign_safe_tx(TX)
    assert double.screens[-1] == {"mode": "blind", "domain_hash": TX.domain_separator, "message_hash": TX.message_hash}
    assert "BLIND signing" in caplog.text and "0x" + TX.message_hash.hex() in caplog.text
    assert len(blob) == 65


@pytest.mark.parametrize("device", ["ledger", "trezor"])
def test_rejected_on_device_is_user_rejected(device, request):
    double = request.getfixturevalue(device)
    uri = "ledger:44'/60'/0'/0/0" if device == "ledger" else f"trezor:{PATH}"
    signer = open_signer(uri)
    _ = signer.address
    double.mode = "reject"
    with pytest.raises(UserRejected, match=f"rejected on the {device.capitalize()}"):
        signer.sign_safe_tx(TX)
    with pytest.raises(UserRejected):
        signer.sign_message(b"no")


def test_ledger_locked_app_closed_absent_and_old_app(ledger, monkeypatch):
    ledger.mode = "locked"
    with pytest.raises(SignerLocked, match="is locked; unlock it with its PIN"):
        _ = open_signer("ledger:44'/60'/0'/0/0").address
    ledger.mode = "app_closed"
    with pytest.raises(DeviceNotFound, match="the Ethereum app is not open on the Ledger"):
        _ = open_signer("ledger:44'/60'/0'/0/0").address
    ledger.mode = "normal"
    old = LedgerDouble(version=(1, 9, 0)).start()
    try:
        monkeypatch.setenv("LEDGER_PROXY_PORT", str(old.port))
        with pytest.raises(UnsupportedOperation, match=r"cannot show EIP-712 fields \(needs 1.9.19\+\)"):
            open_signer("ledger:44'/60'/0'/0/0").sign_safe_tx(TX)
        assert len(open_signer("ledger:44'/60'/0'/0/0", SignerContext(blind=True)).sign_safe_tx(TX)) == 65
    finally:
        old.stop()
    monkeypatch.setenv("LEDGER_PROXY_PORT", "1")
    with pytest.raises(DeviceNotFound, match="no Ledger found"):
        _ = open_signer("ledger:44'/60'/0'/0/0").address


def test_ledger_uri_paths_select_accounts(ledger):
    assert open_signer("ledger:44'/60'/0'/0/3").address == keys.address("m/44'/60'/0'/0/3")
    assert LedgerSigner("m/44'/60'/1'/0/0").address == keys.address("m/44'/60'/1'/0/0")
    with pytest.raises(ValueError, match="needs a BIP-32 path"):
        open_signer("ledger:forty-four")


def test_trezor_pin_wrong_then_right_and_absent(trezor, monkeypatch):
    trezor.pin = "2468"
    monkeypatch.setenv("CUSTODY_TREZOR_PIN", "1357")
    with pytest.raises(SignerLocked, match="wrong PIN for the Trezor") as info:
        _ = open_signer(f"trezor:{PATH}").address
    assert "1357" not in str(info.value) and "2468" not in str(info.value)
    monkeypatch.setenv("CUSTODY_TREZOR_PIN", "2468")
    assert open_signer(f"trezor:{PATH}").address == keys.address(PATH)
    monkeypatch.setenv("TREZOR_PATH", "udp:127.0.0.1:9")
    with pytest.raises(DeviceNotFound, match="no Trezor found at udp:127.0.0.1:9"):
        _ = open_signer(f"trezor:{PATH}").address


@pytest.mark.parametrize("device", ["ledger", "trezor"])
def test_cli_sign_with_device_and_rejection(device, request, run_cli, session, tmp_path):
    double = request.getfixturevalue(device)
    uri = "ledger:44'/60'/0'/0/0" if device == "ledger" else f"trezor:{PATH}"
    address = keys.address(PATH)
    policy = policy_with_owners(
        tmp_path, [address, anvil_signer(2).address, anvil_signer(3).address], threshold=2, name="hw"
    )
    vault, _ = service.create_vault(session, policy)
    session.send(to=vault.safe, value=10**18, what="fund")
    proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.1")
    double.mode = "reject"
    rejected = run_cli("tx", "sign", "1", "--signer", uri)
    assert rejected.exit_code == 1
    assert f"error: the request was rejected on the {device.capitalize()}" in rejected.stderr
    assert "Traceback" not in rejected.stderr
    as_json = json.loads(run_cli("tx", "sign", "1", "--signer", uri, "--json").stdout)
    assert as_json["error"] == "UserRejected"
    double.mode = "normal"
    signed = run_cli("tx", "sign", "1", "--signer", uri, "--json")
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(signed.stdout)["signer"] == address
    blind = run_cli("tx", "sign", "1", "--signer", uri, "--blind")
    assert blind.exit_code == 0 and "BLIND" in blind.stderr
