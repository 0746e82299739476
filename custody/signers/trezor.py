"""Trezor hardware wallets as signers: ``trezor:m/44'/60'/0'/0/0``.

Safe transactions are signed with ``ethereum.sign_typed_data`` and the *full* typed data: the device
asks for every struct definition and every member value and shows them before signing. Hash-only
signing (``EthereumSignTypedHash``) is used only when asked (``--blind``) and logged as a warning.

The device is found through trezorlib's transports: ``$TREZOR_PATH`` (e.g. ``udp:127.0.0.1:21324``
for an emulator, or a ``hid:``/``webusb:`` path) read when the signer connects, else the first
device trezorlib enumerates. A host-entered PIN (PinMatrixRequest) comes from ``$CUSTODY_TREZOR_PIN``,
the file named by ``$CUSTODY_TREZOR_PIN_FILE`` or a no-echo prompt. trezorlib errors are translated
here, once: Cancelled → :class:`UserRejected`, PinException → :class:`SignerLocked`, transport
errors → :class:`DeviceNotFound`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

if TYPE_CHECKING:  # trezorlib is imported lazily (fast start)
    from trezorlib.client import Session, TrezorClient

from custody.exceptions import (
    DeviceNotFound,
    SignatureError,
    SignerError,
    SignerLocked,
    SignerUriError,
    UnsupportedOperation,
    UserRejected,
)
from custody.safe.safe_tx import SafeTx
from custody.signers import _tx, registry
from custody.signers.base import personal_message_digest, typed_data_digest
from custody.signers.ecdsa import EcdsaSignature
from custody.signers.secrets import SecretSource, env_file_or_prompt
from custody.types import Address

log = logging.getLogger(__name__)

PATH_ENV = "TREZOR_PATH"
PIN_ENV = "CUSTODY_TREZOR_PIN"
PIN_FILE_ENV = "CUSTODY_TREZOR_PIN_FILE"


def parse_path(text: str) -> list[int]:
    from trezorlib.tools import parse_path as trezor_parse_path

    try:
        indices = trezor_parse_path(text if text.startswith("m/") else "m/" + text)
    except ValueError as exc:
        raise SignerUriError(
            f"trezor signer URI needs a BIP-32 path like trezor:m/44'/60'/0'/0/0, got trezor:{text}"
        ) from exc
    if not 2 <= len(indices) <= 10:
        raise SignerUriError(f"trezor signer URI needs a BIP-32 path like trezor:m/44'/60'/0'/0/0, got trezor:{text}")
    return indices


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """The one place trezorlib's exceptions become ours."""
    from trezorlib import exceptions
    from trezorlib.transport import TransportException

    try:
        yield
    except exceptions.Cancelled as exc:
        raise UserRejected(f"the request was rejected on the Trezor at {where}") from exc
    except exceptions.PinException as exc:
        raise SignerLocked(f"wrong PIN for the Trezor at {where}; it stays locked") from exc
    except exceptions.OutdatedFirmwareError as exc:
        raise UnsupportedOperation(f"the Trezor at {where} runs outdated firmware; update it") from exc
    except TransportException as exc:
        raise DeviceNotFound(f"no Trezor found at {where} ({type(exc).__name__})") from exc
    except exceptions.TrezorFailure as exc:
        raise SignerError(f"the Trezor at {where} refused: {exc.failure.message or exc.code}") from exc
    except exceptions.TrezorException as exc:
        raise SignerError(f"the Trezor at {where} failed ({type(exc).__name__})") from exc
    except OSError as exc:
        raise DeviceNotFound(f"lost the connection to the Trezor at {where}") from exc


class TrezorSigner:
    """An Ethereum account of a Trezor, addressed by its BIP-32 path."""

    def __init__(
        self,
        path: str,
        *,
        blind: bool = False,
        device_path: str | None = None,
        pin_source: SecretSource | None = None,
        button_callback: Callable[[Any], None] | None = None,
    ) -> None:
        self.n = parse_path(path)
        self.uri = "trezor:" + (path if path.startswith("m/") else "m/" + path)
        self.blind = blind
        self._device_path = device_path
        self._pin_source = pin_source or env_file_or_prompt(value_env=PIN_ENV, file_env=PIN_FILE_ENV, what="Trezor PIN")
        self._button_callback = button_callback
        self._session: Session[Any, Any] | None = None
        self._client: TrezorClient[Any] | None = None
        self._address: Address | None = None

    @property
    def where(self) -> str:
        return self._device_path or os.environ.get(PATH_ENV) or "the first connected device"

    def _pin(self, _request: object) -> str:
        return self._pin_source("Trezor PIN (positions on the device's matrix): ")

    def _button(self, request: object) -> None:
        log.info("%s: confirm on the Trezor (%s)", self.uri, getattr(request, "code", "button"))
        if self._button_callback is not None:
            self._button_callback(request)

    def _connect(self) -> Session[Any, Any]:
        if self._session is None:
            from trezorlib.client import AppManifest, get_client
            from trezorlib.transport import get_transport

            with _translated(self.where):
                path = self._device_path or os.environ.get(PATH_ENV)
                transport = get_transport(path, prefix_search=True)
                app = AppManifest(app_name="custody", button_callback=self._button, pin_callback=self._pin)
                client = get_client(app, transport)
                self._client, self._session = client, client.get_session(passphrase="")
            log.debug("connected to Trezor %s at %s", client.features.label, self.where)
        return self._session

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.transport.close()
            except Exception:  # closing a dead transport is not an error worth reporting
                pass
        self._session = self._client = None

    @property
    def address(self) -> Address:
        if self._address is None:
            from trezorlib import ethereum

            session = self._connect()
            with _translated(self.where):
                self._address = Address(to_checksum_address(ethereum.get_address(session, self.n)))
        return self._address

    def _check(self, signature: EcdsaSignature, digest: bytes, what: str) -> EcdsaSignature:
        normalized = signature.normalized()
        if normalized.recover(digest) != self.address:
            raise SignatureError(f"the Trezor's signature over the {what} does not recover to {self.address}")
        return normalized

    def _sign_typed(self, typed_data: dict[str, Any], domain_hash: bytes, message_hash: bytes) -> EcdsaSignature:
        from trezorlib import ethereum as trezor_ethereum

        # trezorlib's @workflow decorator leaves mypy with Never-typed parameters for the signing calls
        ethereum: Any = trezor_ethereum

        session = self._connect()
        with _translated(self.where):
            if self.blind:
                log.warning(
                    "%s: BLIND signing — the device shows only the domain hash 0x%s and message hash 0x%s; "
                    "compare them with `custody tx show`",
                    self.uri,
                    domain_hash.hex(),
                    message_hash.hex(),
                )
                result = ethereum.sign_typed_data_hash(session, self.n, domain_hash, message_hash)
            else:
                result = ethereum.sign_typed_data(session, self.n, _json_typed_data(typed_data))
        return EcdsaSignature.from_bytes(bytes(result.signature))

    def sign_safe_tx(self, safe_tx: SafeTx) -> bytes:
        signature = self._sign_typed(safe_tx.eip712, safe_tx.domain_separator, safe_tx.message_hash)
        return self._check(signature, safe_tx.safe_tx_hash, "safeTxHash").to_bytes()

    def sign_typed_data(self, typed_data: dict[str, Any]) -> EcdsaSignature:
        from eth_account.messages import encode_typed_data

        digest = typed_data_digest(typed_data)
        signable = encode_typed_data(full_message=typed_data)
        return self._check(self._sign_typed(typed_data, signable.header, signable.body), digest, "typed data")

    def sign_message(self, message: bytes) -> EcdsaSignature:
        from trezorlib import ethereum as trezor_ethereum

        # trezorlib's @workflow decorator leaves mypy with Never-typed parameters for the signing calls
        ethereum: Any = trezor_ethereum

        session = self._connect()
        with _translated(self.where):
            result = ethereum.sign_message(session, self.n, bytes(message))
        signature = EcdsaSignature.from_bytes(bytes(result.signature))
        return self._check(signature, personal_message_digest(message), "message")

    def sign_transaction(self, tx: dict[str, Any], *, chain_id: int) -> bytes:
        from trezorlib import ethereum as trezor_ethereum

        # trezorlib's @workflow decorator leaves mypy with Never-typed parameters for the signing calls
        ethereum: Any = trezor_ethereum

        unsigned = _tx.unsigned(tx, chain_id=chain_id)
        fields = unsigned.as_dict()
        if fields.get("accessList"):
            raise UnsupportedOperation("transactions with an access list are not signed on a Trezor by custody")
        to = fields.get("to")
        session = self._connect()
        with _translated(self.where):
            parity, r, s = ethereum.sign_tx_eip1559(
                session,
                self.n,
                nonce=int(fields["nonce"]),
                gas_limit=int(fields["gas"]),
                to=to_checksum_address(to) if to else "",
                value=int(fields.get("value", 0)),
                data=bytes(fields.get("data") or b""),
                chain_id=chain_id,
                max_gas_fee=int(fields["maxFeePerGas"]),
                max_priority_fee=int(fields["maxPriorityFeePerGas"]),
            )
        signature = EcdsaSignature(int.from_bytes(r, "big"), int.from_bytes(s, "big"), 27 + (parity & 1))
        return _tx.encode(unsigned, self._check(signature, unsigned.hash(), "transaction"))

    def __repr__(self) -> str:
        return f"<TrezorSigner {self.uri}>"


def _json_typed_data(typed_data: dict[str, Any]) -> dict[str, Any]:
    """trezorlib wants JSON shapes: hex strings for bytes, and a copy it may modify."""

    def convert(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return "0x" + bytes(value).hex()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {
        "types": {k: [dict(f) for f in v] for k, v in typed_data["types"].items()},
        "primaryType": typed_data["primaryType"],
        "domain": convert(typed_data["domain"]),
        "message": convert(typed_data["message"]),
    }


def _factory(rest: str, ctx: registry.SignerContext) -> TrezorSigner:
    return TrezorSigner(rest, blind=bool(getattr(ctx, "blind", False)), pin_source=ctx.pin_source)


registry.register("trezor", _factory)
