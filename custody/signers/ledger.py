"""Ledger hardware wallets (Ethereum app) as signers: ``ledger:44'/60'/0'/0/0``.

Safe transactions are signed with the app's EIP-712 *full implementation*: the device receives the
type definitions and every field (``to``, ``value``, ``data``, ``operation``, ``nonce``, …), hashes
them itself and shows them before signing. Hash-only ("blind") signing of the domain and message
hashes is used only when asked (``--blind``) and is logged as a warning.

Transport (ledgerblue): a TCP APDU proxy with speculos framing when ``$LEDGER_PROXY_ADDRESS`` and
``$LEDGER_PROXY_PORT`` are set (read when the signer connects, not at import), else USB HID. Tests
put a device double behind the TCP wire; nothing in this module knows about it. Status words are
translated once, here: 0x6985 → :class:`UserRejected`; 0x6982/0x5515/0x6B0C → :class:`SignerLocked`;
0x6D00/0x6E00/0x6511/0x6D02 → :class:`DeviceNotFound` (Ethereum app not open).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from typing import Any

from eth_utils import to_checksum_address

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
from custody.signers import _eip712_apdu, _tx, registry
from custody.signers.base import personal_message_digest, typed_data_digest
from custody.signers.ecdsa import EcdsaSignature
from custody.types import Address

log = logging.getLogger(__name__)

PROXY_ADDRESS_ENV = "LEDGER_PROXY_ADDRESS"
PROXY_PORT_ENV = "LEDGER_PROXY_PORT"
MIN_EIP712_FULL = (1, 9, 19)  # first app-ethereum release with the full EIP-712 implementation

_PATH = re.compile(r"^(m/)?(\d+'?)(/\d+'?){1,9}$")

REJECTED = {0x6985}
LOCKED = {0x6982, 0x5515, 0x6B0C}
APP_CLOSED = {0x6D00, 0x6E00, 0x6511, 0x6D02, 0x6804, 0x6E01}


def parse_path(text: str) -> bytes:
    """BIP-32 path ``44'/60'/0'/0/0`` (optionally ``m/``-prefixed) → the app's encoding."""
    if not _PATH.match(text):
        raise SignerUriError(f"ledger signer URI needs a BIP-32 path like ledger:44'/60'/0'/0/0, got ledger:{text}")
    parts = text.removeprefix("m/").split("/")
    encoded = b"".join(((int(p[:-1]) | 0x80000000) if p.endswith("'") else int(p)).to_bytes(4, "big") for p in parts)
    return bytes([len(parts)]) + encoded


class _Device:
    """One open APDU channel (a ledgerblue Dongle) with status words translated to our errors."""

    def __init__(self, dongle: Any, where: str) -> None:
        self._dongle = dongle
        self.where = where

    def exchange(self, apdu: bytes, timeout: int = 120_000) -> bytearray:
        from ledgerblue.commException import CommException

        try:
            response: bytearray = self._dongle.exchange(bytes(apdu), timeout)
            return response
        except CommException as exc:
            raise _translate(exc.sw, self.where) from exc
        except OSError as exc:
            raise DeviceNotFound(f"lost the connection to the Ledger at {self.where}") from exc

    def close(self) -> None:
        try:
            self._dongle.close()
        except Exception:  # closing a dead transport is not an error worth reporting
            pass


def _translate(sw: int, where: str) -> SignerError:
    if sw in REJECTED:
        return UserRejected(f"the request was rejected on the Ledger at {where}", status=f"0x{sw:04x}")
    if sw in LOCKED:
        return SignerLocked(f"the Ledger at {where} is locked; unlock it with its PIN", status=f"0x{sw:04x}")
    if sw in APP_CLOSED:
        return DeviceNotFound(f"the Ethereum app is not open on the Ledger at {where}", status=f"0x{sw:04x}")
    if sw == 0x6A80:
        return SignerError(f"the Ledger at {where} refused the data as invalid (status 0x6a80)", status="0x6a80")
    return SignerError(f"the Ledger at {where} answered with status 0x{sw:04x}", status=f"0x{sw:04x}")


def default_transport() -> _Device:
    """TCP proxy (speculos framing) when ``$LEDGER_PROXY_ADDRESS``/``$LEDGER_PROXY_PORT`` are set, else USB HID."""
    from ledgerblue.commException import CommException

    host, port = os.environ.get(PROXY_ADDRESS_ENV), os.environ.get(PROXY_PORT_ENV)
    try:
        if host and port:
            from ledgerblue.commTCP import getDongle as tcp_dongle

            where = f"tcp:{host}:{port}"
            dongle = tcp_dongle(server=host, port=int(port))
            # ledgerblue writes the length and the APDU in two sends: without TCP_NODELAY each APDU
            # waits for a delayed ACK (~40 ms), and an EIP-712 message is dozens of APDUs.
            dongle.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _Device(dongle, where)
        from ledgerblue.comm import getDongle as hid_dongle

        return _Device(hid_dongle(), "usb")
    except CommException as exc:
        raise DeviceNotFound(f"no Ledger found ({exc.message})") from exc
    except (OSError, ValueError) as exc:
        raise DeviceNotFound(f"no Ledger found ({type(exc).__name__})") from exc


def _rsv(response: bytes | bytearray, what: str) -> tuple[int, int, int]:
    if len(response) < 65:
        raise SignatureError(f"the Ledger returned {len(response)} bytes for {what}, expected v‖r‖s (65)")
    return response[0], int.from_bytes(response[1:33], "big"), int.from_bytes(response[33:65], "big")


class LedgerSigner:
    """An account of the Ledger Ethereum app, addressed by its BIP-32 path."""

    def __init__(self, path: str, *, blind: bool = False, transport: Callable[[], _Device] | None = None) -> None:
        self.path = path.removeprefix("m/")
        self._encoded_path = parse_path(self.path)
        self.uri = f"ledger:{self.path}"
        self.blind = blind
        self._transport = transport or default_transport
        self._device: _Device | None = None
        self._address: Address | None = None
        self.app_version: tuple[int, int, int] | None = None

    # -- connection --------------------------------------------------------------------------
    def _dev(self) -> _Device:
        if self._device is None:
            device = self._transport()
            config = device.exchange(bytes([_eip712_apdu.CLA, 0x06, 0x00, 0x00, 0x00]))
            if len(config) < 4:
                device.close()
                raise DeviceNotFound(f"the Ledger at {device.where} did not answer as the Ethereum app")
            self.app_version = (config[1], config[2], config[3])
            self._device = device
            log.debug("Ledger Ethereum app %s at %s", ".".join(map(str, self.app_version)), device.where)
        return self._device

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None

    @property
    def address(self) -> Address:
        if self._address is None:
            data = self._encoded_path
            response = self._dev().exchange(bytes([_eip712_apdu.CLA, 0x02, 0x00, 0x00, len(data)]) + data)
            key_len = response[0]
            offset = 1 + key_len
            text = bytes(response[offset + 1 : offset + 1 + response[offset]]).decode("ascii")
            self._address = Address(to_checksum_address("0x" + text.removeprefix("0x")))
        return self._address

    def _check(self, signature: EcdsaSignature, digest: bytes, what: str) -> EcdsaSignature:
        normalized = signature.normalized()
        if normalized.recover(digest) != self.address:
            raise SignatureError(f"the Ledger's signature over the {what} does not recover to {self.address}")
        return normalized

    # -- EIP-712 -----------------------------------------------------------------------------
    def _sign_full(self, typed_data: dict[str, Any]) -> EcdsaSignature:
        device = self._dev()
        if self.app_version is not None and self.app_version < MIN_EIP712_FULL:
            raise UnsupportedOperation(
                f"Ledger Ethereum app {'.'.join(map(str, self.app_version))} cannot show EIP-712 fields "
                f"(needs {'.'.join(map(str, MIN_EIP712_FULL))}+); update it, or sign blind with --blind"
            )
        for command in _eip712_apdu.definition_apdus(typed_data["types"]):
            device.exchange(command)
        for command in _eip712_apdu.implementation_apdus(typed_data):
            device.exchange(command)
        response = device.exchange(_eip712_apdu.apdu(_eip712_apdu.INS_SIGN_EIP712, 0x00, 0x01, self._encoded_path))
        v, r, s = _rsv(response, "EIP-712 message")
        return EcdsaSignature(r, s, v if v >= 27 else v + 27)

    def _sign_hashes(self, domain_hash: bytes, message_hash: bytes) -> EcdsaSignature:
        log.warning(
            "%s: BLIND signing — the device shows only the domain hash %s and message hash %s; compare them "
            "with `custody tx show`",
            self.uri,
            "0x" + domain_hash.hex(),
            "0x" + message_hash.hex(),
        )
        data = self._encoded_path + domain_hash + message_hash
        response = self._dev().exchange(_eip712_apdu.apdu(_eip712_apdu.INS_SIGN_EIP712, 0x00, 0x00, data))
        v, r, s = _rsv(response, "EIP-712 hashes")
        return EcdsaSignature(r, s, v if v >= 27 else v + 27)

    def sign_safe_tx(self, safe_tx: SafeTx) -> bytes:
        if self.blind:
            signature = self._sign_hashes(safe_tx.domain_separator, safe_tx.message_hash)
        else:
            signature = self._sign_full(safe_tx.eip712)
        return self._check(signature, safe_tx.safe_tx_hash, "safeTxHash").to_bytes()

    def sign_typed_data(self, typed_data: dict[str, Any]) -> EcdsaSignature:
        digest = typed_data_digest(typed_data)
        if self.blind:
            from eth_account.messages import encode_typed_data

            signable = encode_typed_data(full_message=typed_data)
            signature = self._sign_hashes(signable.header, signable.body)
        else:
            signature = self._sign_full(typed_data)
        return self._check(signature, digest, "typed data")

    # -- messages and transactions -----------------------------------------------------------
    def sign_message(self, message: bytes) -> EcdsaSignature:
        payload = self._encoded_path + len(message).to_bytes(4, "big") + bytes(message)
        response = self._chunked(0x08, payload)
        v, r, s = _rsv(response, "message")
        return self._check(EcdsaSignature(r, s, v if v >= 27 else v + 27), personal_message_digest(message), "message")

    def sign_transaction(self, tx: dict[str, Any], *, chain_id: int) -> bytes:
        unsigned = _tx.unsigned(tx, chain_id=chain_id)
        # The app parses the typed-transaction payload (0x02 ‖ rlp) and shows to / value / fees.
        payload = self._encoded_path + _tx.unsigned_bytes(unsigned)
        response = self._chunked(0x04, payload)
        parity, r, s = _rsv(response, "transaction")
        signature = self._check(EcdsaSignature(r, s, 27 + (parity & 1)), unsigned.hash(), "transaction")
        return _tx.encode(unsigned, signature)

    def _chunked(self, ins: int, payload: bytes) -> bytes:
        device = self._dev()
        response = bytearray()
        for i in range(0, len(payload), 255):
            response = device.exchange(_eip712_apdu.apdu(ins, 0x00 if i == 0 else 0x80, 0x00, payload[i : i + 255]))
        return bytes(response)

    def __repr__(self) -> str:
        return f"<LedgerSigner {self.uri}>"


def _factory(rest: str, ctx: registry.SignerContext) -> LedgerSigner:
    return LedgerSigner(rest, blind=bool(getattr(ctx, "blind", False)))


registry.register("ledger", _factory)
