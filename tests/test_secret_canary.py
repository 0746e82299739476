"""Canary secrets — a private key, a keystore passphrase, an HSM PIN, a Trezor PIN — run through every signing
flow with DEBUG logging (-vv) and forced failures; none may appear in logs, stdout, stderr, exception strings
or reprs, exported files, or any file under the workspace."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from custody.exceptions import SignerError
from custody.signers.keystore import KeystoreSigner
from custody.signers.local import anvil_signer
from custody.signers.registry import SignerContext, open_signer
from custody.vault import proposals, service
from tests.signer_fixtures import CANARY_PIN, HSM_CANARY_TOKEN, policy_with_owners

CANARY_KEY = bytes.fromhex("5eed" * 16)
CANARY_PASS = "canary-passphrase-Zq81xKv"
CANARY_TREZOR_PIN = "918273645918"
PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def _needles() -> dict[str, bytes]:
    key_hex = CANARY_KEY.hex()
    return {
        "private key (hex)": key_hex.encode(),
        "private key (HEX)": key_hex.upper().encode(),
        "private key (raw)": CANARY_KEY,
        "passphrase": CANARY_PASS.encode(),
        "HSM PIN": CANARY_PIN.encode(),
        "Trezor PIN": CANARY_TREZOR_PIN.encode(),
    }


def _assert_clean(where: str, data: str | bytes) -> None:
    blob = data.encode() if isinstance(data, str) else bytes(data)
    for what, needle in _needles().items():
        assert needle not in blob, f"the canary {what} leaked into {where}"


def _exception_texts(exc: BaseException) -> str:
    texts = []
    while exc is not None:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception_only(type(exc), exc))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


def test_canaries_never_leak(run_cli, session, softhsm, trezor, workspace, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.hex").write_text("0x" + CANARY_KEY.hex())
    (outside / "pass").write_text(CANARY_PASS + "\n")
    (outside / "canary.pin").write_text(CANARY_PIN + "\n")
    good = {
        "CUSTODY_KEYSTORE_PASSPHRASE_FILE": str(outside / "pass"),
        "CUSTODY_PKCS11_PIN_FILE": str(outside / "canary.pin"),
    }
    results = []

    def cli(*args, env=None, ok=True):
        result = run_cli("-vv", *args, env=env)
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
        results.append(result)
        return result

    # keys: import the canary key into a keystore, generate another, generate an HSM key with the canary PIN
    canary_address = json.loads(
        cli("key", "import", "canary", "--key-file", str(outside / "key.hex"), "--json", env=good).stdout
    )["address"]
    cli("key", "new", "spare", env=good)
    cli("key", "list", env=good)
    hsm = json.loads(cli("key", "new", "--hsm", "--token", HSM_CANARY_TOKEN, "vault-key", "--json", env=good).stdout)
    cli("key", "list", "--token", HSM_CANARY_TOKEN, env=good)

    # a vault owned by the canary keystore and the canary HSM key; both sign; it executes
    policy = policy_with_owners(
        tmp_path, [canary_address, hsm["address"], anvil_signer(2).address], threshold=2, name="canary"
    )
    vault, _ = service.create_vault(session, policy)
    session.send(to=vault.safe, value=10**18, what="fund")
    cli("tx", "propose", "canary", "--to", PRIME_BROKER, "--amount", "0.1", "--proposer", "anvil:5")
    cli("tx", "sign", "1", "--signer", "keystore:canary", env=good)
    cli("tx", "sign", "1", "--signer", hsm["uri"], env=good)
    cli("tx", "execute", "1")

    # offline round trip with the canary keystore, files kept inside the workspace
    proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.2", proposer="ops")
    export = workspace.home / "tx2.json"
    cli("tx", "export", "2", "--out", str(export))
    sig = workspace.home / "sig2.json"
    cli(
        "tx",
        "sign-offline",
        str(export),
        "--signer",
        "keystore:canary",
        "--out",
        str(sig),
        env={**good, "CUSTODY_RPC": "http://127.0.0.1:9"},
    )
    cli("tx", "import-signature", str(sig))

    # forced failures: wrong passphrase, wrong HSM PIN, wrong Trezor PIN, a non-owner signer, a locked token
    wrong_pass = {"CUSTODY_KEYSTORE_PASSPHRASE": CANARY_PASS[::-1]}
    cli("tx", "sign", "2", "--signer", "keystore:spare", env=wrong_pass, ok=False)
    cli("tx", "sign", "2", "--signer", "keystore:spare", env=good, ok=False)  # not an owner
    cli("tx", "sign", "2", "--signer", hsm["uri"], env={"CUSTODY_PKCS11_PIN": CANARY_PIN[::-1]}, ok=False)
    cli("--json", "tx", "sign", "2", "--signer", hsm["uri"], env={"CUSTODY_PKCS11_PIN": CANARY_PIN + "0"}, ok=False)
    trezor.pin = CANARY_TREZOR_PIN
    cli("tx", "sign", "2", "--signer", "trezor:m/44'/60'/0'/0/0", env={"CUSTODY_TREZOR_PIN": "1" * 12}, ok=False)
    cli(
        "tx",
        "sign",
        "2",
        "--signer",
        "trezor:m/44'/60'/0'/0/0",
        env={"CUSTODY_TREZOR_PIN": CANARY_TREZOR_PIN},
        ok=False,
    )  # not an owner

    # API-level failures: exception strings, reprs and causes
    failures = []
    keystore = KeystoreSigner(workspace.keystore_dir / "canary.json", passphrase_source=lambda _p: CANARY_PASS + "!")
    with pytest.raises(SignerError) as info:
        keystore.sign_message(b"x")
    failures.append(info.value)
    with pytest.raises(SignerError) as info:
        open_signer(hsm["uri"], SignerContext(pin_source=lambda _p: CANARY_PIN + "1")).sign_message(b"x")
    failures.append(info.value)
    unlocked = KeystoreSigner(workspace.keystore_dir / "canary.json", passphrase_source=lambda _p: CANARY_PASS)
    unlocked.sign_message(b"unlock")
    hsm_signer = open_signer(hsm["uri"], SignerContext(pin_source=lambda _p: CANARY_PIN))
    hsm_signer.sign_message(b"unlock")
    hsm_signer.close()

    # nothing leaked anywhere
    for r in results:
        _assert_clean(f"stdout of {r}", r.stdout)
        _assert_clean(f"stderr of {r}", r.stderr)
    for exc in failures:
        _assert_clean(f"exception {type(exc).__name__}", _exception_texts(exc))
    for obj in (unlocked, hsm_signer, keystore):
        _assert_clean(f"repr of {obj}", repr(obj) + str(obj))
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for record in caplog.records:
        _assert_clean(f"log record of {record.name}", formatter.format(record))
    _assert_clean("captured log text", caplog.text)
    scanned = 0
    for path in workspace.home.rglob("*"):
        if path.is_file():
            _assert_clean(f"workspace file {path}", path.read_bytes())
            scanned += 1
    assert scanned >= 4  # database (+ WAL), keystores, exported/signature files
    assert any(r.name.startswith("custody") for r in caplog.records)  # DEBUG logging was really on
    assert proposals.get_proposal(session, 2).signatures  # the offline signature came back
