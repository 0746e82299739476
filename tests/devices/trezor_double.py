"""A Trezor double behind trezorlib's UDP emulator wire (64-byte reports, protocol v1 ``?##`` framing).

Like the Ledger double it is a *device*: it speaks the wire protocol (PINGPING/PONGPONG readiness,
protocol-v1 chunking, protobuf messages from ``trezorlib.messages``), runs the firmware's request
flows — ``EthereumTypedDataStructRequest``/``Ack`` for every struct, ``EthereumTypedDataValueRequest``/
``Ack`` for every member path, ``ButtonRequest``/``ButtonAck`` before each signature, PIN matrix —
rebuilds the typed data, hashes it independently (tests/devices/eip712.py) and signs with a key
derived from the test mnemonic. ``screens`` records what the device showed.

Modes: ``normal``; ``reject`` (the user cancels at the confirmation → Failure ActionCancelled).
``pin``: when set, the device is PIN-protected and asks for it (PinMatrixRequest) before the first
key operation; a wrong PIN answers Failure PinInvalid.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
from collections.abc import Generator

from eth_utils import keccak, to_checksum_address
from trezorlib import messages
from trezorlib.mapping import DEFAULT_MAPPING

from tests.devices import eip712, keys

SESSION_ID = bytes(range(32))


def _type_name(ft: messages.EthereumFieldType) -> str:
    t = ft.data_type
    if t == messages.EthereumDataType.UINT:
        return f"uint{ft.size * 8}"
    if t == messages.EthereumDataType.INT:
        return f"int{ft.size * 8}"
    if t == messages.EthereumDataType.BYTES:
        return "bytes" if ft.size is None else f"bytes{ft.size}"
    if t == messages.EthereumDataType.STRING:
        return "string"
    if t == messages.EthereumDataType.BOOL:
        return "bool"
    if t == messages.EthereumDataType.ADDRESS:
        return "address"
    if t == messages.EthereumDataType.STRUCT:
        return ft.struct_name
    assert ft.entry_type is not None
    return _type_name(ft.entry_type) + (f"[{ft.size}]" if ft.size else "[]")


class Abort(Exception):
    def __init__(self, failure: messages.Failure) -> None:
        self.failure = failure


Flow = Generator[object, object, object]


class TrezorDouble:
    def __init__(self) -> None:
        self.mode = "normal"
        self.high_s = False
        self.pin: str | None = None
        self.unlocked = False
        self.screens: list[dict] = []
        self.messages: list[str] = []
        self._sock: socket.socket | None = None
        self._flow: Flow | None = None
        self._buffer = b""
        self._expect = 0
        self._msg_type = 0
        self._stop = threading.Event()

    # -- wire --------------------------------------------------------------------------------
    def start(self) -> TrezorDouble:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()

    @property
    def path(self) -> str:
        assert self._sock is not None
        return f"udp:127.0.0.1:{self._sock.getsockname()[1]}"

    def env(self) -> dict[str, str]:
        return {"TREZOR_PATH": self.path}

    def reset(self) -> None:
        self.mode, self.high_s, self.pin, self.unlocked = "normal", False, None, False
        self.screens.clear()
        self.messages.clear()
        self._flow = None

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                packet, peer = self._sock.recvfrom(64)
            except (TimeoutError, OSError):
                continue
            if packet == b"PINGPING":
                self._sock.sendto(b"PONGPONG", peer)
                continue
            if len(packet) != 64 or packet[:1] != b"?":
                continue
            if packet[:3] == b"?##":
                self._msg_type, self._expect = struct.unpack(">HL", packet[3:9])
                self._buffer = packet[9:]
            else:
                self._buffer += packet[1:]
            if len(self._buffer) < self._expect:
                continue
            msg = DEFAULT_MAPPING.decode(self._msg_type, self._buffer[: self._expect])
            self.messages.append(type(msg).__name__)
            for chunk in self._frames(self._handle(msg)):
                self._sock.sendto(chunk, peer)

    @staticmethod
    def _frames(msg) -> list[bytes]:
        msg_type, data = DEFAULT_MAPPING.encode(msg)
        buffer = io.BytesIO(b"##" + struct.pack(">HL", msg_type, len(data)) + data)
        out = []
        while payload := buffer.read(63):
            out.append((b"?" + payload).ljust(64, b"\x00"))
        return out

    # -- firmware ----------------------------------------------------------------------------
    def _handle(self, msg):
        if isinstance(msg, messages.Cancel):
            self._flow = None
            return messages.Failure(code=messages.FailureType.ActionCancelled, message="Cancelled")
        if self._flow is not None:
            return self._step(lambda: self._flow.send(msg))
        starter = {
            messages.Initialize: self._features,
            messages.GetFeatures: self._features,
            messages.EndSession: lambda _m: messages.Success(),
            messages.GetPublicKey: self._public_key,
            messages.EthereumGetAddress: self._get_address,
            messages.EthereumSignMessage: self._sign_message,
            messages.EthereumSignTypedHash: self._sign_typed_hash,
            messages.EthereumSignTypedData: self._sign_typed_data,
            messages.EthereumSignTxEIP1559: self._sign_tx,
        }.get(type(msg))
        if starter is None:
            return messages.Failure(code=messages.FailureType.UnexpectedMessage, message="Unexpected message")
        result = starter(msg)
        if isinstance(result, Generator):
            self._flow = result
            return self._step(lambda: next(result))
        return result

    def _step(self, advance):
        try:
            return advance()
        except StopIteration as done:
            self._flow = None
            return done.value
        except Abort as abort:
            self._flow = None
            return abort.failure

    def _features(self, _msg) -> messages.Features:
        return messages.Features(
            vendor="trezor.io", major_version=2, minor_version=8, patch_version=1, model="T", internal_model="T2T1",
            initialized=True, pin_protection=self.pin is not None, passphrase_protection=False,
            unlocked=self.pin is None or self.unlocked, session_id=SESSION_ID, capabilities=[messages.Capability.Ethereum],
            device_id="DOUBLE", label="custody test double",
        )  # fmt: skip

    def _public_key(self, msg) -> messages.PublicKey:
        path = keys.path_text(list(msg.address_n))
        pub = keys.public_key(path)
        compressed = bytes([2 + (pub[64] & 1)]) + pub[1:33]
        node = messages.HDNodeType(
            depth=len(msg.address_n), fingerprint=0x1234ABCD, child_num=0, chain_code=bytes(32), public_key=compressed
        )
        return messages.PublicKey(node=node, xpub="xpub-double")

    def _unlock(self) -> Flow:
        if self.pin is None or self.unlocked:
            return
        ack = yield messages.PinMatrixRequest(type=messages.PinMatrixRequestType.Current)
        if not isinstance(ack, messages.PinMatrixAck) or ack.pin != self.pin:
            raise Abort(messages.Failure(code=messages.FailureType.PinInvalid, message="PIN invalid"))
        self.unlocked = True

    def _confirm(self, screen: dict) -> Flow:
        self.screens.append(screen)
        ack = yield messages.ButtonRequest(code=messages.ButtonRequestType.SignTx)
        if not isinstance(ack, messages.ButtonAck):
            raise Abort(messages.Failure(code=messages.FailureType.UnexpectedMessage, message="ButtonAck expected"))
        if self.mode == "reject":
            raise Abort(messages.Failure(code=messages.FailureType.ActionCancelled, message="Cancelled"))

    def _signature(self, path: str, digest: bytes) -> bytes:
        parity, r, s = keys.sign(path, digest, high_s=self.high_s)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + parity])

    def _get_address(self, msg) -> Flow:
        yield from self._unlock()
        return messages.EthereumAddress(address=keys.address(keys.path_text(list(msg.address_n))))

    def _sign_message(self, msg) -> Flow:
        yield from self._unlock()
        path = keys.path_text(list(msg.address_n))
        yield from self._confirm({"mode": "message", "message": msg.message})
        digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(msg.message)).encode() + msg.message)
        return messages.EthereumMessageSignature(signature=self._signature(path, digest), address=keys.address(path))

    def _sign_typed_hash(self, msg) -> Flow:
        yield from self._unlock()
        path = keys.path_text(list(msg.address_n))
        yield from self._confirm(
            {"mode": "blind", "domain_hash": msg.domain_separator_hash, "message_hash": msg.message_hash}
        )
        digest = keccak(b"\x19\x01" + msg.domain_separator_hash + (msg.message_hash or b""))
        return messages.EthereumTypedDataSignature(signature=self._signature(path, digest), address=keys.address(path))

    def _sign_typed_data(self, msg) -> Flow:
        yield from self._unlock()
        path = keys.path_text(list(msg.address_n))
        types: dict[str, list[dict]] = {}
        pending = ["EIP712Domain", msg.primary_type]
        while pending:
            name = pending.pop(0)
            if name in types:
                continue
            ack = yield messages.EthereumTypedDataStructRequest(name=name)
            if not isinstance(ack, messages.EthereumTypedDataStructAck):
                raise Abort(messages.Failure(code=messages.FailureType.UnexpectedMessage, message="StructAck expected"))
            types[name] = [{"name": member.name, "type": _type_name(member.type)} for member in ack.members]
            for member in ack.members:
                ft = member.type
                while ft.data_type == messages.EthereumDataType.ARRAY:
                    ft = ft.entry_type
                if ft.data_type == messages.EthereumDataType.STRUCT:
                    pending.append(ft.struct_name)
        shown: list[tuple[str, str]] = []

        def value(type_name: str, member_path: list[int], label: str) -> Flow:
            if type_name in types:
                out = {}
                for i, f in enumerate(types[type_name]):
                    out[f["name"]] = yield from value(f["type"], [*member_path, i], f"{label}.{f['name']}")
                return out
            ack = yield messages.EthereumTypedDataValueRequest(member_path=member_path)
            if not isinstance(ack, messages.EthereumTypedDataValueAck):
                raise Abort(messages.Failure(code=messages.FailureType.UnexpectedMessage, message="ValueAck expected"))
            raw = ack.value
            if type_name.endswith("]"):
                inner = type_name[: type_name.rindex("[")]
                count = int.from_bytes(raw, "big")
                items = []
                for k in range(count):
                    items.append((yield from value(inner, [*member_path, k], f"{label}[{k}]")))
                return items
            if type_name.startswith("uint"):
                decoded: object = int.from_bytes(raw, "big")
            elif type_name.startswith("int"):
                decoded = int.from_bytes(raw, "big", signed=True)
            elif type_name == "bool":
                decoded = bool(raw[0])
            elif type_name == "string":
                decoded = raw.decode()
            else:
                decoded = raw
            if type_name == "address":
                shown.append((label, to_checksum_address(raw)))
            else:
                shown.append((label, "0x" + raw.hex() if isinstance(decoded, bytes) else str(decoded)))
            return decoded

        domain = yield from value("EIP712Domain", [0], "domain")
        message = yield from value(msg.primary_type, [1], msg.primary_type)
        domain_hash, message_hash, digest = eip712.digest(types, msg.primary_type, domain, message)
        yield from self._confirm(
            {
                "mode": "full",
                "primary": msg.primary_type,
                "fields": shown,
                "domain_hash": domain_hash,
                "message_hash": message_hash,
            }
        )
        return messages.EthereumTypedDataSignature(signature=self._signature(path, digest), address=keys.address(path))

    def _sign_tx(self, msg) -> Flow:
        import rlp

        yield from self._unlock()
        path = keys.path_text(list(msg.address_n))
        data = msg.data_initial_chunk or b""
        while len(data) < msg.data_length:
            ack = yield messages.EthereumTxRequest(data_length=min(1024, msg.data_length - len(data)))
            data += ack.data_chunk
        to = bytes.fromhex(msg.to[2:]) if msg.to else b""
        fields = [
            msg.chain_id, int.from_bytes(msg.nonce, "big"), int.from_bytes(msg.max_priority_fee, "big"),
            int.from_bytes(msg.max_gas_fee, "big"), int.from_bytes(msg.gas_limit, "big"), to,
            int.from_bytes(msg.value, "big"), data, [],
        ]  # fmt: skip
        yield from self._confirm(
            {"mode": "transaction", "chain_id": msg.chain_id, "to": msg.to, "value": int.from_bytes(msg.value, "big")}
        )
        digest = keccak(b"\x02" + rlp.encode(fields))
        parity, r, s = keys.sign(path, digest, high_s=self.high_s)
        return messages.EthereumTxRequest(
            signature_v=parity, signature_r=r.to_bytes(32, "big"), signature_s=s.to_bytes(32, "big")
        )
