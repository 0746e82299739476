"""Encrypted keystores: created and imported without the passphrase on argv, used to sign a Safe tx."""

import json

import pytest

from custody.exceptions import KeyNotFound, SignerLocked
from custody.signers.keystore import KeystoreSigner, create_keystore
from custody.signers.local import anvil_private_key, anvil_signer
from custody.vault import proposals, service
from tests.conftest import POLICIES

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def pass_file(tmp_path):
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n")
    return path


def test_cli_new_list_and_import(run_cli, pass_file, workspace, tmp_path):
    env = {"CUSTODY_KEYSTORE_PASSPHRASE_FILE": str(pass_file)}
    created = run_cli("key", "new", "ops-1", "--json", env=env)
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    assert (workspace.keystore_dir / "ops-1.json").exists()
    assert oct((workspace.keystore_dir / "ops-1.json").stat().st_mode & 0o777) == "0o600"
    key_file = tmp_path / "k.hex"
    key_file.write_text("0x" + anvil_private_key(7).hex())
    imported = run_cli("key", "import", "seven", "--key-file", str(key_file), "--json", env=env)
    assert json.loads(imported.stdout)["address"] == anvil_signer(7).address
    listed = json.loads(run_cli("key", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["ops-1", "seven"]
    assert listed[0]["address"].lower() == info["address"].lower()
    clash = run_cli("key", "new", "ops-1", env=env)
    assert clash.exit_code == 1 and "refusing to overwrite" in clash.stderr
    for result in (created, imported, clash):
        assert PASSPHRASE not in result.output


def test_keystore_signs_a_real_safe_transfer(session, tmp_path, pass_file, monkeypatch):
    path = tmp_path / "owner.json"
    create_keystore(path, anvil_private_key(1), PASSPHRASE)
    monkeypatch.setenv("CUSTODY_KEYSTORE_PASSPHRASE_FILE", str(pass_file))
    vault, _ = service.create_vault(session, POLICIES / "cold.yaml")
    session.send(to=vault.safe, value=10**18, what="fund")
    p = proposals.propose_transfer(session, vault.id, to="0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", amount="0.5")
    signer = session.signer(f"keystore:{path}")
    assert signer.address == anvil_signer(1).address
    proposals.sign(session, p, signer)
    proposals.sign(session, proposals.get_proposal(session, p.id), anvil_signer(2))
    proposals.execute(session, proposals.get_proposal(session, p.id))
    assert proposals.get_proposal(session, p.id).state is proposals.ProposalState.EXECUTED


def test_wrong_passphrase_is_locked_not_leaked(tmp_path):
    path = tmp_path / "k.json"
    create_keystore(path, anvil_private_key(3), PASSPHRASE)
    signer = KeystoreSigner(path, passphrase_source=lambda _prompt: "not it")
    with pytest.raises(SignerLocked, match="wrong passphrase for keystore k.json") as info:
        signer.sign_message(b"hello")
    assert "not it" not in str(info.value) and anvil_private_key(3).hex() not in repr(signer)


def test_missing_keystore_and_no_passphrase_source(tmp_path, monkeypatch):
    with pytest.raises(KeyNotFound, match="does not exist"):
        KeystoreSigner(tmp_path / "absent.json")
    path = tmp_path / "k.json"
    create_keystore(path, anvil_private_key(3), PASSPHRASE)
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    with pytest.raises(SignerLocked, match="no passphrase available"):
        KeystoreSigner(path).sign_message(b"x")


def test_keystore_by_name_in_workspace(session, pass_file, monkeypatch):
    create_keystore(session.workspace.keystore_dir / "treasury.json", anvil_private_key(4), PASSPHRASE)
    assert session.signer("keystore:treasury").address == anvil_signer(4).address
