"""Signer URIs → backends.

keystore:PATH                    v3 keystore file (or a name inside the workspace keystore folder)
pkcs11:token=LABEL;object=KEY    PKCS#11 token (RFC 7512 style)
ledger:44'/60'/0'/0/0            Ledger Ethereum app
trezor:m/44'/60'/0'/0/0          Trezor
anvil:N                          Anvil dev account N (local chains only)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from custody.exceptions import SignerUriError
from custody.signers.base import Signer
from custody.signers.keystore import KeystoreSigner
from custody.signers.local import anvil_signer
from custody.signers.secrets import SecretSource

Factory = Callable[[str, "SignerContext"], Signer]


class SignerContext:
    """What backends may need besides the URI: where keystores live, how to get passphrases/PINs."""

    def __init__(
        self,
        *,
        keystore_dir: Path | None = None,
        passphrase_source: SecretSource | None = None,
        pin_source: SecretSource | None = None,
        blind: bool = False,
    ) -> None:
        self.keystore_dir = keystore_dir
        self.passphrase_source = passphrase_source
        self.pin_source = pin_source
        self.blind = blind  # hardware wallets: sign hashes only (no on-device field display); opt-in


def _anvil(rest: str, _ctx: SignerContext) -> Signer:

    if not rest.isdigit():
        raise SignerUriError(f"anvil signer URI must be anvil:N with N a number, got anvil:{rest}")
    return anvil_signer(int(rest))


def _keystore(rest: str, ctx: SignerContext) -> Signer:

    if not rest:
        raise SignerUriError("keystore signer URI needs a path: keystore:PATH")
    path = Path(rest).expanduser()
    if not path.exists() and ctx.keystore_dir is not None and "/" not in rest:
        named = ctx.keystore_dir / (rest if rest.endswith(".json") else f"{rest}.json")
        if named.exists():
            path = named
    return KeystoreSigner(path, passphrase_source=ctx.passphrase_source)


_BACKENDS: dict[str, Factory] = {"anvil": _anvil, "keystore": _keystore}


def register(scheme: str, factory: Factory) -> None:
    """Add a backend (used by the pkcs11 / ledger / trezor modules)."""
    _BACKENDS[scheme] = factory


def schemes() -> list[str]:
    _load_optional_backends()
    return sorted(_BACKENDS)


def _load_optional_backends() -> None:
    # Backends with heavier dependencies register themselves on import.
    for module in ("custody.signers.pkcs11", "custody.signers.ledger", "custody.signers.trezor"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                continue


def open_signer(uri: str, ctx: SignerContext | None = None) -> Signer:
    """Resolve a signer URI; raises :class:`SignerUriError` for unknown schemes or bad syntax."""
    if not isinstance(uri, str) or ":" not in uri:
        raise SignerUriError(f"signer {uri!r} is not a signer URI (expected scheme:..., one of {', '.join(schemes())})")
    scheme, rest = uri.split(":", 1)
    if scheme not in _BACKENDS:
        _load_optional_backends()
    factory = _BACKENDS.get(scheme)
    if factory is None:
        raise SignerUriError(f"unknown signer scheme {scheme!r} (known: {', '.join(schemes())})")
    return factory(rest, ctx or SignerContext())
