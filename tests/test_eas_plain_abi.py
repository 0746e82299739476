"""Badges are plain EAS attestations: readable with the EAS ABI from the pinned npm package and web3 alone.

The reading half of this test uses no project code — only web3, eth-abi and the artifact that
``npm ci`` installs — as a third-party tool or an auditor's script would.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eth_abi import decode
from web3 import Web3

from custody.attest import steps
from custody.signers.local import anvil_address
from custody.vault import service
from tests.conftest import FIXTURES

NPM = Path(__file__).resolve().parent.parent / "node_modules" / "@ethereum-attestation-service" / "eas-contracts"
VENDORED = Path(__file__).resolve().parent.parent / "custody" / "contracts" / "vendor" / "eas"


def _npm_artifact(name: str) -> dict:
    return json.loads((NPM / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json").read_text())


def test_a_badge_decodes_with_the_plain_eas_abi(session, anvil):
    record, _ = service.create_vault(session, FIXTURES / "policies" / "attested.yaml", name="plain")
    badge = steps.kyc_badge(session, vault=record.safe, subject=anvil_address(2), jurisdiction="DE",
                        evidence=b"id card", attester=session.signer("anvil:9"))  # fmt: skip

    # -- from here on: web3 + the npm artifact only ----------------------------------------------------
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    receipt = w3.eth.get_transaction_receipt(badge.tx_hash)
    eas_abi = _npm_artifact("EAS")["abi"]
    eas = w3.eth.contract(address=receipt["to"], abi=eas_abi)
    (event,) = eas.events.Attested().process_receipt(receipt)
    uid = event["args"]["uid"]
    attestation = eas.functions.getAttestation(uid).call()
    registry = w3.eth.contract(
        address=eas.functions.getSchemaRegistry().call(), abi=_npm_artifact("SchemaRegistry")["abi"]
    )
    schema_uid, _resolver, revocable, schema = registry.functions.getSchema(attestation[1]).call()
    assert schema_uid == attestation[1]
    assert schema == "address vault,address subject,string jurisdiction,bytes32 evidenceHash" and revocable
    types = [part.strip().rsplit(" ", 1)[0] for part in schema.split(",")]
    vault, subject, jurisdiction, evidence = decode(types, attestation[9])
    assert Web3.to_checksum_address(vault) == record.safe
    assert Web3.to_checksum_address(subject) == anvil_address(2) == attestation[6]  # recipient
    assert jurisdiction == "DE" and attestation[7] == anvil_address(9)  # attester
    assert evidence == hashlib.sha256(b"id card").digest()
    assert "0x" + uid.hex() == badge.uid and attestation[4] == 0  # not revoked


def test_vendored_eas_artifacts_are_the_pinned_npm_build():
    for name in ("EAS", "SchemaRegistry"):
        vendored = json.loads((VENDORED / f"{name}.json").read_text())
        npm = _npm_artifact(name)
        assert vendored["bytecode"] == npm["bytecode"] and vendored["abi"] == npm["abi"]
