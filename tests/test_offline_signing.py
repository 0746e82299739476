"""Air-gapped signing through exchange files: export → sign-offline (no RPC) → import-signature → execute."""

from __future__ import annotations

import json

import pytest

from custody.signers.keystore import create_keystore
from custody.signers.local import anvil_private_key, anvil_signer
from custody.vault import proposals, service
from tests.conftest import POLICIES
from tests.devices import keys
from tests.signer_fixtures import policy_with_owners

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
STS_FIELDS = {"safe", "to", "value", "data", "operation", "safeTxGas", "baseGas", "gasPrice", "gasToken",
              "refundReceiver", "nonce", "contractTransactionHash"}  # fmt: skip
NO_RPC = {"CUSTODY_RPC": "http://127.0.0.1:9"}  # the air-gapped side has no chain


@pytest.fixture
def proposal(session):
    vault, _ = service.create_vault(session, POLICIES / "cold.yaml")
    session.send(to=vault.safe, value=10**18, what="fund")
    return proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.5", proposer="ops")


@pytest.fixture
def keystore_env(tmp_path):
    path = tmp_path / "airgap" / "officer.json"
    create_keystore(path, anvil_private_key(1), "offline passphrase", kdf="pbkdf2")
    (tmp_path / "pass").write_text("offline passphrase\n")
    return path, {"CUSTODY_KEYSTORE_PASSPHRASE_FILE": str(tmp_path / "pass")}


def test_export_sign_offline_import_execute(run_cli, session, proposal, keystore_env, tmp_path):
    exported = run_cli("tx", "export", str(proposal.id))
    assert exported.exit_code == 0, exported.stderr
    doc = json.loads(exported.stdout)
    assert set(doc) >= STS_FIELDS
    assert doc["contractTransactionHash"] == proposal.safe_tx_hash and doc["chainId"] == session.chain_id
    assert doc["typedData"]["primaryType"] == "SafeTx" and doc["value"] == str(5 * 10**17) and doc["data"] is None
    assert doc["domainHash"] == "0x" + proposal.safe_tx.domain_separator.hex()
    assert doc["review"]["decoded"]["summary"] == f"send 0.5 ETH to {PRIME_BROKER}"
    tx_file = tmp_path / "tx.json"
    tx_file.write_text(exported.stdout)

    path, env = keystore_env
    signed = run_cli("tx", "sign-offline", str(tx_file), "--signer", f"keystore:{path}", env={**env, **NO_RPC})
    assert signed.exit_code == 0, signed.stderr
    assert "safeTxHash      " + proposal.safe_tx_hash in signed.stderr
    sig = json.loads(signed.stdout)
    assert STS_FIELDS | {"sender", "signature"} <= set(sig)
    assert sig["sender"] == anvil_signer(1).address
    sig_file = tmp_path / "sig.json"
    sig_file.write_text(signed.stdout)

    imported = run_cli("tx", "import-signature", str(sig_file), "--json")
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout) == {
        "proposal": proposal.id, "signer": anvil_signer(1).address, "added": True, "valid_signatures": 1, "threshold": 2,
    }  # fmt: skip
    again = json.loads(run_cli("tx", "import-signature", str(sig_file), "--json").stdout)
    assert again["added"] is False and again["valid_signatures"] == 1
    assert run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:2").exit_code == 0
    assert run_cli("tx", "execute", str(proposal.id)).exit_code == 0
    assert proposals.get_proposal(session, proposal.id).state is proposals.ProposalState.EXECUTED


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("value", "600000000000000000", "contractTransactionHash 0x"),
        ("to", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "does not match the transaction's fields"),
        ("nonce", 5, "does not match the transaction's fields"),
        ("chainId", 1, "does not match the transaction's fields"),
        ("domainHash", "0x" + "00" * 32, "domainHash does not match"),
        ("contractTransactionHash", "0x1234", "must be 32 bytes"),
        ("operation", 2, "operation must be 0 (CALL) or 1 (DELEGATECALL)"),
        ("safe", "0xnot-an-address", "is not an address"),
    ],
)
def test_sign_offline_refuses_tampered_files(run_cli, proposal, keystore_env, tmp_path, field, value, message):
    doc = json.loads(run_cli("tx", "export", str(proposal.id)).stdout)
    doc[field] = value
    tx_file = tmp_path / "tx.json"
    tx_file.write_text(json.dumps(doc))
    path, env = keystore_env
    result = run_cli("tx", "sign-offline", str(tx_file), "--signer", f"keystore:{path}", env={**env, **NO_RPC})
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_tampered_typed_data_and_sender_mismatch(run_cli, session, proposal, keystore_env, tmp_path):
    doc = json.loads(run_cli("tx", "export", str(proposal.id)).stdout)
    doc["typedData"]["message"]["value"] = 1
    (tmp_path / "tx.json").write_text(json.dumps(doc))
    path, env = keystore_env
    bad = run_cli(
        "tx", "sign-offline", str(tmp_path / "tx.json"), "--signer", f"keystore:{path}", env={**env, **NO_RPC}
    )
    assert "typedData hashes to 0x" in bad.stderr
    good = json.loads(run_cli("tx", "export", str(proposal.id)).stdout)
    (tmp_path / "tx.json").write_text(json.dumps(good))
    sig = json.loads(
        run_cli("tx", "sign-offline", str(tmp_path / "tx.json"), "--signer", f"keystore:{path}", env=env).stdout
    )
    sig["sender"] = anvil_signer(3).address
    (tmp_path / "sig.json").write_text(json.dumps(sig))
    mismatch = run_cli("tx", "import-signature", str(tmp_path / "sig.json"))
    assert (
        mismatch.exit_code == 1
        and f"recovers to {anvil_signer(1).address}, but the file names sender" in mismatch.stderr
    )
    assert proposals.get_proposal(session, proposal.id).signatures == ()


def test_offline_signing_with_a_hardware_wallet(run_cli, session, ledger, tmp_path):
    owner = keys.address("m/44'/60'/0'/0/0")
    policy = policy_with_owners(
        tmp_path, [owner, anvil_signer(2).address, anvil_signer(3).address], threshold=2, name="hw"
    )
    vault, _ = service.create_vault(session, policy)
    p = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.1")
    (tmp_path / "tx.json").write_text(run_cli("tx", "export", str(p.id)).stdout)
    signed = run_cli("tx", "sign-offline", str(tmp_path / "tx.json"), "--signer", "ledger:44'/60'/0'/0/0", env=NO_RPC)
    assert signed.exit_code == 0, signed.stderr
    assert dict(ledger.screens[-1]["fields"])["SafeTx.to"] == PRIME_BROKER
    (tmp_path / "sig.json").write_text(signed.stdout)
    assert json.loads(run_cli("tx", "import-signature", str(tmp_path / "sig.json"), "--json").stdout)["signer"] == owner
