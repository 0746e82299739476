"""A Ledger Ethereum-app double behind the speculos TCP wire (4-byte length + APDU → data + status word).

It is a *device*, not a mock of our code: it parses the APDUs it receives exactly as the app does —
BIP-32 paths, EIP-712 struct definitions and implementations (INS 0x1A / 0x1C), hash-only EIP-712
(INS 0x0C P2=0), personal messages (INS 0x08), typed transactions (INS 0x04) — rebuilds the typed
data, hashes it itself (tests/devices/eip712.py, independent of eth-account and of custody) and
signs with a key derived from a known test mnemonic. What it "showed" on its screen is recorded in
``screens`` so tests can assert what a person would have reviewed.

Modes: ``normal``; ``reject`` (the user presses reject → 0x6985); ``locked`` (0x5515); ``app_closed``
(0x6D00, the Ethereum app is not open). ``high_s=True`` returns high-s signatures.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field

import rlp
from eth_utils import keccak, to_checksum_address

from tests.devices import eip712, keys

OK = 0x9000
SW_REJECTED = 0x6985
SW_LOCKED = 0x5515
SW_APP_CLOSED = 0x6D00
SW_INVALID = 0x6A80
SW_BAD_INS = 0x6D00

_KINDS = {1: "int", 2: "uint", 3: "address", 4: "bool", 5: "string", 6: "bytes", 7: "bytes"}


class DeviceError(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"status 0x{sw:04x}")
        self.sw = sw


def _path(data: bytes) -> tuple[str, bytes]:
    count = data[0]
    indices = [int.from_bytes(data[1 + 4 * i : 5 + 4 * i], "big") for i in range(count)]
    return keys.path_text(indices), data[1 + 4 * count :]


@dataclass
class _Connection:
    """Per-connection app state (what the app keeps in RAM between APDUs)."""

    structs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    current_struct: str | None = None
    impl: list[tuple[str, object]] = field(default_factory=list)
    field_buffer: bytes = b""
    message: bytes = b""
    message_path: str = ""
    message_len: int = 0
    tx: bytes = b""
    tx_path: str = ""


class LedgerDouble:
    def __init__(self, *, version: tuple[int, int, int] = (1, 12, 0)) -> None:
        self.version = version
        self.mode = "normal"
        self.high_s = False
        self.screens: list[dict] = []
        self.apdus: list[bytes] = []
        self._server: socketserver.ThreadingTCPServer | None = None

    # -- server ------------------------------------------------------------------------------
    def start(self) -> LedgerDouble:
        double = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                state = _Connection()
                sock: socket.socket = self.request
                while True:
                    header = _recv(sock, 4)
                    if header is None:
                        return
                    apdu = _recv(sock, struct.unpack(">I", header)[0]) or b""
                    double.apdus.append(apdu)
                    try:
                        data, sw = double.process(state, apdu), OK
                    except DeviceError as exc:
                        data, sw = b"", exc.sw
                    sock.sendall(struct.pack(">I", len(data)) + data + struct.pack(">H", sw))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def env(self) -> dict[str, str]:
        return {"LEDGER_PROXY_ADDRESS": "127.0.0.1", "LEDGER_PROXY_PORT": str(self.port)}

    def reset(self) -> None:
        self.mode, self.high_s = "normal", False
        self.screens.clear()
        self.apdus.clear()

    # -- the app -----------------------------------------------------------------------------
    def process(self, st: _Connection, apdu: bytes) -> bytes:
        if len(apdu) < 5 or apdu[0] != 0xE0:
            raise DeviceError(0x6E00)
        if self.mode == "locked":
            raise DeviceError(SW_LOCKED)
        if self.mode == "app_closed":
            raise DeviceError(SW_APP_CLOSED)
        ins, p1, p2, lc = apdu[1], apdu[2], apdu[3], apdu[4]
        data = apdu[5 : 5 + lc]
        if len(data) != lc:
            raise DeviceError(0x6700)
        handler = {
            0x06: self._config,
            0x02: self._address,
            0x1A: self._struct_def,
            0x1C: self._struct_impl,
            0x0C: self._sign_eip712,
            0x08: self._sign_message,
            0x04: self._sign_tx,
        }.get(ins)
        if handler is None:
            raise DeviceError(SW_BAD_INS)
        return handler(st, p1, p2, data)

    def _config(self, st, p1, p2, data) -> bytes:
        return bytes([0x01, *self.version])

    def _address(self, st, p1, p2, data) -> bytes:
        path, _ = _path(data)
        pub = keys.public_key(path)
        addr = keys.address(path)[2:].encode()
        return bytes([len(pub)]) + pub + bytes([len(addr)]) + addr

    def _respond_signature(self, path: str, digest: bytes, *, tx: bool = False) -> bytes:
        if self.mode == "reject":
            raise DeviceError(SW_REJECTED)
        parity, r, s = keys.sign(path, digest, high_s=self.high_s)
        v = parity if tx else 27 + parity
        return bytes([v]) + r.to_bytes(32, "big") + s.to_bytes(32, "big")

    # EIP-712 definitions / implementation
    def _struct_def(self, st: _Connection, p1, p2, data) -> bytes:
        if p2 == 0x00:
            st.current_struct = data.decode()
            st.structs[st.current_struct] = []
            return b""
        if p2 != 0xFF or st.current_struct is None:
            raise DeviceError(SW_INVALID)
        desc, i = data[0], 1
        kind = desc & 0x0F
        if kind == 0:
            n = data[i]
            type_name = data[i + 1 : i + 1 + n].decode()
            i += 1 + n
        else:
            type_name = _KINDS[kind]
        if desc & 0x40:
            size = data[i]
            i += 1
            type_name += str(size * 8 if kind in (1, 2) else size)
        if desc & 0x80:
            levels = data[i]
            i += 1
            for _ in range(levels):
                if data[i] == 0:
                    type_name += "[]"
                    i += 1
                else:
                    type_name += f"[{data[i + 1]}]"
                    i += 2
        n = data[i]
        st.structs[st.current_struct].append((type_name, data[i + 1 : i + 1 + n].decode()))
        return b""

    def _struct_impl(self, st: _Connection, p1, p2, data) -> bytes:
        if p2 == 0x00:
            st.impl.append(("root", data.decode()))
        elif p2 == 0x0F:
            st.impl.append(("array", data[0]))
        elif p2 == 0xFF:
            st.field_buffer += data
            if p1 == 0x00:  # last chunk of this field
                size = int.from_bytes(st.field_buffer[:2], "big")
                value = st.field_buffer[2:]
                if len(value) != size:
                    raise DeviceError(SW_INVALID)
                st.impl.append(("field", value))
                st.field_buffer = b""
        else:
            raise DeviceError(SW_INVALID)
        return b""

    def _rebuild(self, st: _Connection) -> tuple[dict, str, dict, dict, list]:
        types = {name: [{"name": n, "type": t} for t, n in fields] for name, fields in st.structs.items()}
        events = list(st.impl)
        shown: list[tuple[str, str]] = []

        def take(kind: str):
            if not events or events[0][0] != kind:
                raise DeviceError(SW_INVALID)
            return events.pop(0)[1]

        def value(type_name: str, label: str):
            if type_name.endswith("]"):
                inner = type_name[: type_name.rindex("[")]
                return [value(inner, f"{label}[{k}]") for k in range(take("array"))]
            if type_name in types:
                return {f["name"]: value(f["type"], f"{label}.{f['name']}") for f in types[type_name]}
            raw = take("field")
            if type_name.startswith("uint"):
                decoded = int.from_bytes(raw, "big")
            elif type_name.startswith("int"):
                size = int(type_name[3:] or 256) // 8
                decoded = int.from_bytes(raw, "big", signed=len(raw) == size)
            elif type_name == "address":
                if len(raw) != 20:
                    raise DeviceError(SW_INVALID)
                decoded = raw
                shown.append((label, to_checksum_address(raw)))
                return decoded
            elif type_name == "bool":
                decoded = bool(raw[0])
            elif type_name == "string":
                decoded = raw.decode()
            else:
                decoded = raw
            shown.append((label, "0x" + raw.hex() if isinstance(decoded, bytes) else str(decoded)))
            return decoded

        if take("root") != "EIP712Domain":
            raise DeviceError(SW_INVALID)
        domain = value("EIP712Domain", "domain")
        primary = take("root")
        message = value(primary, primary)
        if events:
            raise DeviceError(SW_INVALID)
        return types, primary, domain, message, shown

    def _sign_eip712(self, st: _Connection, p1, p2, data) -> bytes:
        path, rest = _path(data)
        if p2 == 0x00:  # hash-only (blind): domain hash ‖ message hash
            if len(rest) != 64:
                raise DeviceError(SW_INVALID)
            domain_hash, message_hash = rest[:32], rest[32:]
            digest = keccak(b"\x19\x01" + domain_hash + message_hash)
            self.screens.append({"mode": "blind", "domain_hash": domain_hash, "message_hash": message_hash})
        elif p2 == 0x01:
            types, primary, domain, message, shown = self._rebuild(st)
            domain_hash, message_hash, digest = eip712.digest(types, primary, domain, message)
            self.screens.append(
                {
                    "mode": "full",
                    "primary": primary,
                    "fields": shown,
                    "domain_hash": domain_hash,
                    "message_hash": message_hash,
                }
            )
            st.structs.clear()
            st.impl.clear()
        else:
            raise DeviceError(SW_INVALID)
        return self._respond_signature(path, digest)

    def _sign_message(self, st: _Connection, p1, p2, data) -> bytes:
        if p1 == 0x00:
            st.message_path, rest = _path(data)
            st.message_len = int.from_bytes(rest[:4], "big")
            st.message = rest[4:]
        else:
            st.message += data
        if len(st.message) < st.message_len:
            return b""
        message = st.message
        digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
        self.screens.append({"mode": "message", "message": message})
        return self._respond_signature(st.message_path, digest)

    def _sign_tx(self, st: _Connection, p1, p2, data) -> bytes:
        if p1 == 0x00:
            st.tx_path, st.tx = _path(data)
        else:
            st.tx += data
        payload = st.tx
        if not payload or payload[0] != 0x02:
            raise DeviceError(SW_INVALID)
        body = payload[1:]
        if len(body) < 1:
            return b""
        prefix = body[0]
        if prefix >= 0xF8:
            n = prefix - 0xF7
            if len(body) < 1 + n:
                return b""
            total = 1 + n + int.from_bytes(body[1 : 1 + n], "big")
        else:
            total = 1 + prefix - 0xC0
        if len(body) < total:
            return b""
        fields = rlp.decode(body[:total])
        chain_id, nonce, _tip, _fee, gas, to, value = (fields[0], fields[1], *fields[2:7])
        self.screens.append(
            {
                "mode": "transaction",
                "chain_id": int.from_bytes(chain_id, "big"),
                "nonce": int.from_bytes(nonce, "big"),
                "to": to_checksum_address(to) if to else None,
                "value": int.from_bytes(value, "big"),
                "gas": int.from_bytes(gas, "big"),
            }
        )
        return self._respond_signature(st.tx_path, keccak(payload[: 1 + total]), tx=True)


def _recv(sock: socket.socket, size: int) -> bytes | None:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            return out or None
        out += chunk
    return out
