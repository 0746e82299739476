"""Local private keys: Anvil's well-known dev accounts (``anvil:N``) and in-memory keys.

Dev keys are public knowledge; they exist for local chains, tests and demos only.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

from custody.chain.anvil import DEFAULT_MNEMONIC
from custody.exceptions import SignerUriError
from custody.signers.base import DigestSigner
from custody.signers.ecdsa import EcdsaSignature, sign_digest_with_key
from custody.types import Address

ANVIL_ACCOUNTS = 10


class LocalKeySigner(DigestSigner):
    """A secp256k1 key held in process memory. The key never appears in repr, str or errors."""

    def __init__(self, private_key: bytes, *, uri: str = "local:") -> None:
        self.__key = bytes(private_key)
        self.uri = uri
        self._address = Address(Account.from_key(self.__key).address)

    @property
    def address(self) -> Address:
        return self._address

    def _sign_digest(self, digest: bytes) -> EcdsaSignature:
        return sign_digest_with_key(self.__key, digest)


_anvil_keys: dict[int, bytes] = {}


def anvil_private_key(index: int) -> bytes:
    if not 0 <= index < ANVIL_ACCOUNTS:
        raise SignerUriError(f"anvil:{index} is out of range; anvil has dev accounts 0..{ANVIL_ACCOUNTS - 1}")
    if index not in _anvil_keys:
        seed = seed_from_mnemonic(DEFAULT_MNEMONIC, passphrase="")
        _anvil_keys[index] = key_from_seed(seed, f"m/44'/60'/0'/0/{index}")
    return _anvil_keys[index]


def anvil_signer(index: int) -> LocalKeySigner:
    return LocalKeySigner(anvil_private_key(index), uri=f"anvil:{index}")


def anvil_address(index: int) -> Address:
    return anvil_signer(index).address
