"""PKCS#11 tokens (HSMs, SoftHSM2) as signers: ``pkcs11:token=LABEL;object=KEY[;pin-source=file:PATH]``.

The URI follows RFC 7512: path attributes separated by ``;`` (``token``, ``object``, optionally
``id``), query attributes after ``?`` (``pin-source``, ``module-path``), percent-encoding allowed.
A ``pin-value`` in the URI is refused: PINs never travel on the command line.

* module: ``module-path`` in the URI, else ``$CUSTODY_PKCS11_MODULE``, else SoftHSM2's
  ``/usr/lib/softhsm/libsofthsm2.so``;
* PIN: ``pin-source=file:PATH`` in the URI, else ``$CUSTODY_PKCS11_PIN``, else the file named by
  ``$CUSTODY_PKCS11_PIN_FILE``, else a no-echo prompt on a terminal;
* tokens are found by label (slot ids change when tokens are added);
* keys are secp256k1 (``EC_PARAMS`` = OID 1.3.132.0.10) generated on the token, private half
  sensitive and non-extractable; the address comes from ``CKA_EC_POINT``;
* ``CKM_ECDSA`` signs the 32-byte digest and returns raw ``r‖s``; we normalise to low-s and find
  ``v`` by recovery against the token's public key.
"""

from __future__ import annotations

import logging
import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import coincurve
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import Object, Session, Token

if TYPE_CHECKING:  # the Cython module's stub; pkcs11.lib() returns one
    from pkcs11._pkcs11 import lib as Pkcs11Library

from custody.exceptions import (
    DeviceNotFound,
    KeyNotFound,
    SignerError,
    SignerLocked,
    SignerUriError,
    UnsupportedOperation,
)
from custody.signers import registry
from custody.signers.base import DigestSigner
from custody.signers.ecdsa import HALF_N, SECP256K1_N, EcdsaSignature, address_from_public_key
from custody.signers.secrets import SecretSource, env_file_or_prompt, read_secret_file
from custody.types import Address

log = logging.getLogger(__name__)

MODULE_ENV = "CUSTODY_PKCS11_MODULE"
PIN_ENV = "CUSTODY_PKCS11_PIN"
PIN_FILE_ENV = "CUSTODY_PKCS11_PIN_FILE"
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SECP256K1_EC_PARAMS = bytes.fromhex("06052b8104000a")  # DER OID 1.3.132.0.10

_PATH_ATTRS = {"token", "object", "id", "type", "manufacturer", "serial", "model", "library-description"}
_QUERY_ATTRS = {"pin-source", "module-path", "module-name"}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI that select one key on one token."""

    token: str
    object: str
    pin_source: str | None = None
    module_path: str | None = None

    @classmethod
    def parse(cls, rest: str) -> Pkcs11Uri:
        path, _, query = rest.partition("?")
        attrs: dict[str, str] = {}
        for part in [p for p in path.split(";") if p]:
            name, sep, value = part.partition("=")
            if not sep:
                raise SignerUriError(f"pkcs11 URI attribute {name!r} has no value (expected name=value)")
            if name == "pin-value":
                raise SignerUriError(
                    "a PIN in the pkcs11 URI is refused; use pin-source=file:PATH or $CUSTODY_PKCS11_PIN_FILE"
                )
            if name not in _PATH_ATTRS:
                raise SignerUriError(f"unknown pkcs11 URI attribute {name!r} (known: token, object, id)")
            attrs[name] = unquote(value)
        for part in [p for p in query.split("&") if p]:
            name, sep, value = part.partition("=")
            if name == "pin-value":
                raise SignerUriError(
                    "a PIN in the pkcs11 URI is refused; use pin-source=file:PATH or $CUSTODY_PKCS11_PIN_FILE"
                )
            if not sep or name not in _QUERY_ATTRS:
                raise SignerUriError(f"unknown pkcs11 URI query attribute {name!r} (known: pin-source, module-path)")
            attrs[name] = unquote(value)
        if not attrs.get("token") or not attrs.get("object"):
            raise SignerUriError(
                "pkcs11 signer URI needs token=LABEL and object=KEY, e.g. pkcs11:token=ops;object=officer-1"
            )
        return cls(attrs["token"], attrs["object"], attrs.get("pin-source"), attrs.get("module-path"))

    def __str__(self) -> str:
        text = f"pkcs11:token={self.token};object={self.object}"
        return text


def default_pin_source() -> SecretSource:
    return env_file_or_prompt(value_env=PIN_ENV, file_env=PIN_FILE_ENV, what="PKCS#11 user PIN")


def _pin_source_from_uri(value: str) -> SecretSource:
    if not value.startswith("file:"):
        raise SignerUriError(f"pin-source must be a file: URI (file:/path/to/pin), got {value.split(':', 1)[0]}:…")
    path = value.removeprefix("file:").removeprefix("//")
    return lambda _prompt: read_secret_file(path, what="PKCS#11 PIN")


# -- the library -------------------------------------------------------------------------------
_conf_seen: dict[str, str | None] = {}


def load_library(module: str | None = None) -> Pkcs11Library:
    """The PKCS#11 module, initialised; re-initialised when ``$SOFTHSM2_CONF`` changed since."""
    path = module or os.environ.get(MODULE_ENV) or DEFAULT_MODULE
    if not Path(path).exists():
        raise DeviceNotFound(f"PKCS#11 module {path} does not exist (set {MODULE_ENV} to your HSM's module)")
    try:
        lib = pkcs11.lib(path)
        conf = os.environ.get("SOFTHSM2_CONF")
        if path in _conf_seen and _conf_seen[path] != conf:
            lib.reinitialize()
        _conf_seen[path] = conf
    except (p11.PKCS11Error, OSError, RuntimeError) as exc:
        raise DeviceNotFound(f"PKCS#11 module {path} cannot be loaded ({type(exc).__name__})") from exc
    return lib


def find_token(lib: Pkcs11Library, label: str) -> Token:
    try:
        return lib.get_token(token_label=label)
    except p11.NoSuchToken:
        labels = sorted({t.label for t in lib.get_tokens() if t.label})
        raise DeviceNotFound(
            f"no PKCS#11 token labelled {label!r} (tokens present: {', '.join(labels) or 'none'})", token=label
        ) from None
    except p11.MultipleTokensReturned:
        raise DeviceNotFound(f"more than one PKCS#11 token is labelled {label!r}; labels must be unique") from None


def open_session(token: Token, label: str, pin_source: SecretSource, *, rw: bool = False) -> Session:
    """A logged-in user session; wrong or locked PINs become :class:`SignerLocked`."""
    pin = pin_source(f"PIN for token {label}: ")
    try:
        return token.open(user_pin=pin, rw=rw)
    except p11.UserAlreadyLoggedIn:
        # PKCS#11 login state is per process and token: another open session of ours logged in already.
        return _open_plain(token, label, rw=rw)
    except p11.PinIncorrect:
        raise SignerLocked(f"wrong PIN for PKCS#11 token {label!r}", token=label) from None
    except (p11.PinLocked, p11.PinExpired):
        raise SignerLocked(f"the user PIN of PKCS#11 token {label!r} is locked or expired", token=label) from None
    except (p11.PinInvalid, p11.PinLenRange):
        raise SignerLocked(f"the PIN given for PKCS#11 token {label!r} is malformed", token=label) from None
    except p11.UserPinNotInitialized:
        raise SignerLocked(f"PKCS#11 token {label!r} has no user PIN set", token=label) from None
    except p11.PKCS11Error as exc:
        raise DeviceNotFound(f"cannot open a session on PKCS#11 token {label!r} ({type(exc).__name__})") from exc
    finally:
        del pin


def _open_plain(token: Token, label: str, *, rw: bool) -> Session:
    try:
        return token.open(rw=rw)
    except p11.PKCS11Error as exc:
        raise DeviceNotFound(f"cannot open a session on PKCS#11 token {label!r} ({type(exc).__name__})") from exc


def ec_point_to_public_key(ec_point: bytes) -> bytes:
    """Unwrap ``CKA_EC_POINT`` (DER OCTET STRING ``04 41 04…`` or a raw point) to a 65-byte key."""
    data = bytes(ec_point)
    if len(data) >= 2 and data[0] == 0x04 and data[1] == len(data) - 2:
        data = data[2:]
    elif len(data) >= 3 and data[0] == 0x04 and data[1] == 0x81 and data[2] == len(data) - 3:
        data = data[3:]
    if len(data) != 65 or data[0] != 0x04:
        raise UnsupportedOperation(f"CKA_EC_POINT is not an uncompressed secp256k1 point ({len(data)} bytes)")
    return data


def _find_key(session: Session, label: str, object_class: ObjectClass, token: str) -> Object | None:
    found = list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))
    if not found:
        return None
    if len(found) > 1:
        raise KeyNotFound(f"more than one key labelled {label!r} on PKCS#11 token {token!r}; labels must be unique")
    return found[0]


# -- the signer --------------------------------------------------------------------------------
class Pkcs11Signer(DigestSigner):
    """A secp256k1 private key that never leaves its PKCS#11 token."""

    def __init__(self, uri: Pkcs11Uri, *, pin_source: SecretSource | None = None, module: str | None = None) -> None:
        self.location = uri
        self.uri = str(uri)
        if uri.pin_source:
            pin_source = _pin_source_from_uri(uri.pin_source)
        self._pin_source = pin_source or default_pin_source()
        self._lib = load_library(uri.module_path or module)
        self._token = find_token(self._lib, uri.token)
        self._session: Session | None = None
        # the key's sign() comes from a mixin python-pkcs11 adds at runtime by key type: not in its static types
        self._private: Any = None
        self._public_key: bytes | None = None
        self._compressed: bytes | None = None
        self._address: Address | None = None

    def _open(self) -> None:
        if self._private is not None:
            return
        session = open_session(self._token, self.location.token, self._pin_source)
        try:
            private = _find_key(session, self.location.object, ObjectClass.PRIVATE_KEY, self.location.token)
            public = _find_key(session, self.location.object, ObjectClass.PUBLIC_KEY, self.location.token)
            if private is None or public is None:
                raise KeyNotFound(
                    f"no secp256k1 key pair labelled {self.location.object!r} on PKCS#11 token {self.location.token!r}",
                    token=self.location.token,
                    object=self.location.object,
                )
            if bytes(public[Attribute.EC_PARAMS]) != SECP256K1_EC_PARAMS:
                raise UnsupportedOperation(
                    f"key {self.location.object!r} on token {self.location.token!r} is not on secp256k1"
                )
            self._public_key = ec_point_to_public_key(public[Attribute.EC_POINT])
        except BaseException:
            session.close()
            raise
        self._compressed = coincurve.PublicKey(self._public_key).format(compressed=True)
        self._address = address_from_public_key(self._public_key)
        self._session, self._private = session, private
        log.debug("opened PKCS#11 key %s on token %s (%s)", self.location.object, self.location.token, self._address)

    @property
    def address(self) -> Address:
        self._open()
        assert self._address is not None
        return self._address

    @property
    def public_key(self) -> bytes:
        self._open()
        assert self._public_key is not None
        return self._public_key

    def raw_sign(self, digest: bytes) -> bytes:
        """``CKM_ECDSA`` over exactly ``digest``: the token's raw 64-byte ``r‖s`` (possibly high-s)."""
        self._open()
        try:
            return bytes(self._private.sign(digest, mechanism=Mechanism.ECDSA))
        except p11.UserNotLoggedIn:
            raise SignerLocked(f"PKCS#11 token {self.location.token!r} logged out; sign again") from None
        except (p11.DeviceRemoved, p11.TokenNotPresent, p11.SessionClosed, p11.SessionHandleInvalid) as exc:
            raise DeviceNotFound(f"PKCS#11 token {self.location.token!r} went away while signing") from exc
        except p11.PKCS11Error as exc:
            raise SignerError(f"PKCS#11 token {self.location.token!r} refused to sign ({type(exc).__name__})") from exc

    def _sign_digest(self, digest: bytes) -> EcdsaSignature:
        raw = self.raw_sign(digest)
        if len(raw) != 64:
            raise SignerError(f"PKCS#11 token {self.location.token!r} returned a {len(raw)}-byte ECDSA signature")
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        if s > HALF_N:
            s = SECP256K1_N - s
        # v by recovery against the token's public key (one or two coincurve recoveries).
        rs = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        for parity in (0, 1):
            try:
                recovered = coincurve.PublicKey.from_signature_and_message(rs + bytes([parity]), digest, hasher=None)
            except Exception:
                continue
            if recovered.format(compressed=True) == self._compressed:
                return EcdsaSignature(r, s, 27 + parity)
        raise SignerError(f"PKCS#11 token {self.location.token!r} returned a signature that does not verify")

    def _checked(self, digest: bytes) -> EcdsaSignature:
        # _sign_digest already proved the signature recovers to the token's public key.
        return self._sign_digest(digest)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = self._private = None


def generate_key(
    token_label: str, name: str, *, pin_source: SecretSource | None = None, module: str | None = None
) -> tuple[Address, str]:
    """Generate a secp256k1 key pair labelled ``name`` on the token; returns (address, signer URI).

    The private key is created sensitive, non-extractable and private; refuses to shadow an existing label.
    """
    lib = load_library(module)
    token = find_token(lib, token_label)
    session = open_session(token, token_label, pin_source or default_pin_source(), rw=True)
    try:
        if list(session.get_objects({Attribute.LABEL: name})):
            raise SignerError(f"PKCS#11 token {token_label!r} holds a key labelled {name!r} already; pick another name")
        key_id = _random.token_bytes(8)
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: SECP256K1_EC_PARAMS}, local=True)
        try:
            public, _private = params.generate_keypair(
                store=True,
                label=name,
                id=key_id,
                public_template={Attribute.VERIFY: True, Attribute.PRIVATE: False},
                private_template={
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
        except p11.PKCS11Error as exc:
            raise UnsupportedOperation(
                f"PKCS#11 token {token_label!r} cannot generate secp256k1 keys ({type(exc).__name__})"
            ) from exc
        address = address_from_public_key(ec_point_to_public_key(public[Attribute.EC_POINT]))
    finally:
        session.close()
    log.info("generated secp256k1 key %s on PKCS#11 token %s: %s", name, token_label, address)
    return address, f"pkcs11:token={token_label};object={name}"


def list_keys(
    token_label: str, *, pin_source: SecretSource | None = None, module: str | None = None
) -> list[dict[str, Any]]:
    """secp256k1 keys on the token: label, address, signer URI."""
    lib = load_library(module)
    token = find_token(lib, token_label)
    session = open_session(token, token_label, pin_source or default_pin_source())
    try:
        items = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC}):
            if bytes(obj[Attribute.EC_PARAMS]) != SECP256K1_EC_PARAMS:
                continue
            label = obj[Attribute.LABEL]
            address = address_from_public_key(ec_point_to_public_key(obj[Attribute.EC_POINT]))
            items.append({"name": label, "address": address, "uri": f"pkcs11:token={token_label};object={label}"})
    finally:
        session.close()
    return sorted(items, key=lambda i: i["name"])


def _factory(rest: str, ctx: registry.SignerContext) -> Pkcs11Signer:
    return Pkcs11Signer(Pkcs11Uri.parse(rest), pin_source=ctx.pin_source)


registry.register("pkcs11", _factory)
