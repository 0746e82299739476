"""Confirmer secrets sealed at rest: scrypt derives a key from the out-of-band passphrase, AES-256-GCM seals
the secret (the file's purpose is the associated data, so a sealed file cannot be swapped for another).

The passphrase comes from ``$CUSTODY_OOB_PASSPHRASE``, the file named by ``$CUSTODY_OOB_PASSPHRASE_FILE``, or a
no-echo prompt on a terminal; it is never stored in the workspace. Sealed files are JSON::

    {"version": 1, "kdf": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": hex, "nonce": hex, "ciphertext": hex}
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from custody._passphrase import resolve_passphrase
from custody.exceptions import ConfirmationError

PASSPHRASE_ENV = "CUSTODY_OOB_PASSPHRASE"
PASSPHRASE_FILE_ENV = "CUSTODY_OOB_PASSPHRASE_FILE"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def oob_passphrase() -> str:
    """The out-of-band passphrase: environment, passphrase file, or a no-echo prompt on a terminal."""
    try:
        passphrase = resolve_passphrase(PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, "out-of-band secrets passphrase: ")
    except OSError as exc:
        raise ConfirmationError(
            f"cannot read the passphrase file named by {PASSPHRASE_FILE_ENV}: {exc.strerror}"
        ) from exc
    if not passphrase:
        raise ConfirmationError(
            "no passphrase for the sealed out-of-band secrets: set "
            f"{PASSPHRASE_FILE_ENV} (a file holding it) or {PASSPHRASE_ENV}, or run on a terminal to be prompted"
        )
    return passphrase


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal(secret: bytes, passphrase: str, purpose: str) -> bytes:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    ciphertext = AESGCM(_key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(nonce, secret, purpose.encode())
    document = {
        "version": 1,
        "kdf": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }
    return json.dumps(document, sort_keys=True).encode()


def unseal(sealed: bytes, passphrase: str, purpose: str, *, what: str) -> bytes:
    try:
        doc = json.loads(sealed)
        key = _key(passphrase, bytes.fromhex(doc["salt"]), int(doc["n"]), int(doc["r"]), int(doc["p"]))
        return AESGCM(key).decrypt(bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["ciphertext"]), purpose.encode())
    except InvalidTag as exc:
        raise ConfirmationError(f"the passphrase does not open {what} (or the sealed file was altered)") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfirmationError(f"{what} is not a sealed secret file") from exc


def write_sealed(path: Path, secret: bytes, passphrase: str, purpose: str) -> None:
    """Create ``path`` (0600, never overwriting) holding ``secret`` sealed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(seal(secret, passphrase, purpose))
