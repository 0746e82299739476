"""Encrypted keystores (Web3 Secret Storage v3, scrypt) as signers: ``keystore:PATH``.

The passphrase comes from a :class:`PassphraseSource` — environment variable, file, or an
interactive prompt that never echoes — and never from the command line. The decrypted key lives
only inside the signer object and only after the first signature is requested.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_utils import to_checksum_address

from custody._passphrase import resolve_passphrase
from custody.exceptions import DeviceNotFound, KeyNotFound, SignerError, SignerLocked
from custody.signers.base import DigestSigner
from custody.signers.ecdsa import EcdsaSignature, sign_digest_with_key
from custody.types import Address

PASSPHRASE_ENV = "CUSTODY_KEYSTORE_PASSPHRASE"
PASSPHRASE_FILE_ENV = "CUSTODY_KEYSTORE_PASSPHRASE_FILE"

PassphraseSource = Callable[[str], str]
"""Given a prompt (naming the keystore), return the passphrase."""


def default_passphrase_source(prompt: str) -> str:
    """Environment variable, then passphrase file, then a no-echo prompt on a terminal."""
    try:
        passphrase = resolve_passphrase(PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, prompt)
    except OSError as exc:
        raise SignerError(f"cannot read the passphrase file named by {PASSPHRASE_FILE_ENV}: {exc.strerror}") from exc
    if passphrase is None:
        raise SignerLocked(
            f"no passphrase available for the keystore: set {PASSPHRASE_FILE_ENV} (a file holding it) or "
            f"{PASSPHRASE_ENV}, or run on a terminal to be prompted"
        )
    return passphrase


def read_keystore(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise KeyNotFound(f"keystore file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignerError(f"{path} is not a readable keystore JSON file") from exc
    if not isinstance(data, dict) or "crypto" not in {k.lower() for k in data} or "address" not in data:
        raise SignerError(f"{path} is not a v3 keystore (needs 'address' and 'crypto')")
    return data


class KeystoreSigner(DigestSigner):
    """A v3 keystore file, decrypted on first use."""

    def __init__(self, path: Path, *, passphrase_source: PassphraseSource | None = None) -> None:
        self.path = Path(path)
        self.uri = f"keystore:{self.path}"
        if not self.path.parent.exists():
            raise DeviceNotFound(f"keystore folder {self.path.parent} does not exist")
        self._keystore = read_keystore(self.path)
        self._address = Address(to_checksum_address("0x" + self._keystore["address"].removeprefix("0x")))
        self._passphrase_source = passphrase_source or default_passphrase_source
        self.__key: bytes | None = None

    @property
    def address(self) -> Address:
        return self._address

    def unlock(self) -> None:
        if self.__key is not None:
            return
        passphrase = self._passphrase_source(f"Passphrase for {self.path.name} ({self._address}): ")
        try:
            key = Account.decrypt(self._keystore, passphrase)
        except ValueError:
            raise SignerLocked(f"wrong passphrase for keystore {self.path.name}") from None
        finally:
            del passphrase
        if Account.from_key(key).address != self._address:
            raise SignerError(f"keystore {self.path.name} decrypts to a key that is not {self._address}")
        self.__key = bytes(key)

    def _sign_digest(self, digest: bytes) -> EcdsaSignature:
        self.unlock()
        assert self.__key is not None
        return sign_digest_with_key(self.__key, digest)


def create_keystore(
    path: Path, private_key: bytes, passphrase: str, *, kdf: Literal["scrypt", "pbkdf2"] = "scrypt"
) -> Address:
    """Encrypt ``private_key`` into a new v3 keystore at ``path`` (never overwrites)."""
    if path.exists():
        raise SignerError(f"{path} exists already; refusing to overwrite a keystore")
    if not passphrase:
        raise SignerError("an empty passphrase is not allowed for a keystore")
    encrypted = Account.encrypt(private_key, passphrase, kdf=kdf)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(encrypted, handle)
    return Address(Account.from_key(private_key).address)
