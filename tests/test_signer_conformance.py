"""One conformance suite, every backend: keystore, SoftHSM2 (PKCS#11), Ledger double, Trezor double, anvil dev key.

Each backend is opened through the signer URI registry exactly as the CLI opens it; the hardware
doubles sit behind their real wire protocols. Every property is checked against the real Safe on Anvil.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from web3.exceptions import ContractLogicError

from custody.chain.transactions import send_raw, wait_for_receipt
from custody.exceptions import NotAnOwner, NotEnoughSignatures, SignerError
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import verify_owner_signature
from custody.signers.base import Signer, personal_message_digest, typed_data_digest
from custody.signers.ecdsa import HALF_N, SECP256K1_N
from custody.signers.keystore import create_keystore
from custody.signers.local import anvil_signer
from custody.signers.registry import SignerContext, open_signer
from custody.types import Operation
from custody.vault import proposals, service
from tests.signer_fixtures import policy_with_owners

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
BACKENDS = ["keystore", "pkcs11", "ledger", "trezor", "anvil"]
KEYSTORE_PASSPHRASE = "conformance keystore passphrase"

MAIL = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person[]"},
            {"name": "contents", "type": "string"},
            {"name": "attachment", "type": "bytes"},
            {"name": "amount", "type": "uint96"},
            {"name": "tag", "type": "bytes32"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallets": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"]},
        "to": [
            {
                "name": "Bob",
                "wallets": ["0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB", "0xB0B0b0b0b0b0B000000000000000000000000000"],
            }
        ],
        "contents": "Hello, Bob!",
        "attachment": "0x" + "ab" * 300,
        "amount": 12345,
        "tag": "0x" + "11" * 32,
    },
}


@dataclass
class Backend:
    name: str
    signer: Signer
    device: Any = None  # the double, for hardware backends


@pytest.fixture(scope="session")
def _opened(softhsm, ledger_device, trezor_device, tmp_path_factory) -> dict[str, Signer]:
    """One signer per backend for the whole session, opened through the URI registry."""
    folder = tmp_path_factory.mktemp("conformance-keystore")
    create_keystore(folder / "k.json", keccak(b"custody conformance keystore"), KEYSTORE_PASSPHRASE, kdf="pbkdf2")
    pin = softhsm.pin_file.read_text().strip()
    return {
        "keystore": open_signer(
            f"keystore:{folder / 'k.json'}", SignerContext(passphrase_source=lambda _p: KEYSTORE_PASSPHRASE)
        ),
        "pkcs11": open_signer(softhsm.uri, SignerContext(pin_source=lambda _p: pin)),
        "anvil": open_signer("anvil:6"),
    }


@pytest.fixture(params=BACKENDS)
def backend(request, _opened, ledger, trezor) -> Backend:
    name = request.param
    if name == "ledger":
        return Backend(name, open_signer("ledger:44'/60'/0'/0/0"), ledger)
    if name == "trezor":
        return Backend(name, open_signer("trezor:m/44'/60'/0'/0/0"), trezor)
    return Backend(name, _opened[name])


def _safe_tx(nonce: int = 0, chain_id: int = 31337, safe: str = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762") -> SafeTx:
    return SafeTx(
        safe=safe, chain_id=chain_id, to=PRIME_BROKER, value=10**17 + nonce, data=b"", operation=Operation.CALL,
        nonce=nonce,
    )  # fmt: skip


def _vault_owned_by(session, tmp_path, address: str):
    owners = [address, anvil_signer(2).address, anvil_signer(3).address]
    policy = policy_with_owners(tmp_path, owners, threshold=2, name="conformance")
    vault, _ = service.create_vault(session, policy)
    session.send(to=vault.safe, value=10**18, what="fund")
    return vault


def _twin(blob: bytes) -> bytes:
    s = int.from_bytes(blob[32:64], "big")
    return blob[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - blob[64]])


class TestSignerConformance:
    def test_address_is_checksummed_and_stable(self, backend):
        address = backend.signer.address
        assert address.startswith("0x") and len(address) == 42
        assert address == backend.signer.address
        assert backend.signer.uri.split(":", 1)[0] == backend.name

    @pytest.mark.parametrize("high_s_device", [False, True])
    def test_safe_signatures_recover_low_s_with_correct_v(self, backend, high_s_device):
        if backend.device is not None:
            backend.device.high_s = high_s_device
        for nonce in range(6 if high_s_device else 12):  # a token's raw signatures are high-s ~half the time
            tx = _safe_tx(nonce)
            blob = backend.signer.sign_safe_tx(tx)
            assert len(blob) == 65 and blob[64] in (27, 28)
            assert int.from_bytes(blob[32:64], "big") <= HALF_N
            checked = verify_owner_signature(blob, tx.safe_tx_hash)
            assert checked.signer == backend.signer.address and checked.signature == blob

    def test_the_safe_accepts_the_signature_on_chain(self, backend, session, tmp_path):
        vault = _vault_owned_by(session, tmp_path, backend.signer.address)
        proposal = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.25")
        _sig, added = proposals.sign(session, proposal, backend.signer)
        assert added
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(2))
        receipt = proposals.execute(session, proposals.get_proposal(session, proposal.id))
        assert proposals.get_proposal(session, proposal.id).state is proposals.ProposalState.EXECUTED
        assert receipt.gas_used > 21000

    def test_replay_on_another_chain_or_nonce_is_rejected(self, backend, session, tmp_path):
        vault = _vault_owned_by(session, tmp_path, backend.signer.address)
        proposal = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.25")
        target = proposal.safe_tx
        other_chain = SafeTx(**{**_fields(target), "chain_id": target.chain_id + 1})
        other_nonce = SafeTx(**{**_fields(target), "nonce": target.nonce + 1})
        safe = session.contract("SafeL2", vault.safe)
        for replayed, cause in (
            (
                other_chain,
                f"for chain id {target.chain_id + 1}, but vault {target.safe} is on chain id {target.chain_id}",
            ),
            (other_nonce, f"with nonce {target.nonce + 1}, but this transaction has nonce {target.nonce}"),
        ):
            blob = backend.signer.sign_safe_tx(replayed)
            assert verify_owner_signature(blob, target.safe_tx_hash).signer != backend.signer.address
            # refused, and the refusal names what the signature was really made for
            with pytest.raises(
                NotAnOwner, match=f"owner {backend.signer.address}'s signature of this transaction {cause}"
            ):
                proposals.add_signature(session, proposal, blob, source="replay")
            good = anvil_signer(2).sign_safe_tx(target)
            packed = b"".join(
                sorted([blob, good], key=lambda b: int(verify_owner_signature(b, target.safe_tx_hash).signer, 16))
            )
            with pytest.raises(ContractLogicError):
                safe.functions.checkSignatures(target.safe_tx_hash, b"", packed).call()
        assert proposals.get_proposal(session, proposal.id).signatures == ()

    def test_malleated_duplicate_does_not_count_twice(self, backend, session, tmp_path):
        vault = _vault_owned_by(session, tmp_path, backend.signer.address)
        proposal = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="0.25")
        blob = backend.signer.sign_safe_tx(proposal.safe_tx)
        _, first = proposals.add_signature(session, proposal, blob, source="test")
        stored, second = proposals.add_signature(
            session, proposals.get_proposal(session, proposal.id), _twin(blob), source="test"
        )
        assert first and not second and stored.signature == blob
        current = proposals.get_proposal(session, proposal.id)
        assert len(current.signatures) == 1
        with pytest.raises(NotEnoughSignatures, match="has 1 valid owner signature"):
            proposals.execute(session, current)

    def test_sign_transaction_checks_chain_id_and_sends(self, backend, session):
        address = backend.signer.address
        session.send(to=address, value=10**17, what="fund the signer")
        nonce = session.chain.w3.eth.get_transaction_count(address)
        tx = {
            "chainId": session.chain_id, "nonce": nonce, "gas": 21000, "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9, "to": PRIME_BROKER, "value": 12345, "data": b"",
        }  # fmt: skip
        with pytest.raises(SignerError, match="is for chain id 1, but the signer was asked for 31337"):
            backend.signer.sign_transaction({**tx, "chainId": 1}, chain_id=session.chain_id)
        raw = backend.signer.sign_transaction(tx, chain_id=session.chain_id)
        assert Account.recover_transaction(raw) == address
        receipt = wait_for_receipt(session.chain, send_raw(session.chain, raw), what="signer conformance transfer")
        assert receipt.status == 1

    def test_sign_message_and_typed_data_recover(self, backend):
        message = b"custody conformance \x00\xff" * 20
        signature = backend.signer.sign_message(message)
        assert signature.is_low_s and signature.recover(personal_message_digest(message)) == backend.signer.address
        typed = backend.signer.sign_typed_data(MAIL)
        assert typed.is_low_s and typed.recover(typed_data_digest(MAIL)) == backend.signer.address

    def test_attests_on_eas_by_delegation(self, backend, session):
        """Any backend can be the attester key: EAS accepts its delegated Attest signature and records it."""
        from custody.attest import badges

        badge = badges.issue(
            session, "drill", attester=backend.signer, recipient=PRIME_BROKER,
            fields={"vault": PRIME_BROKER, "playbook": f"conformance-{backend.name}", "reportHash": b"\x01" * 32,
                    "passed": True, "ledgerEntry": badges.ZERO32},
        )  # fmt: skip
        onchain = badges.read(session, badge.uid)
        assert onchain.attester == backend.signer.address != session.sender.address
        assert onchain.fields["playbook"] == f"conformance-{backend.name}"


def _fields(tx: SafeTx) -> dict:
    return {k: v for k, v in tx.__dict__.items() if k != "_hash_cache"}
