"""Fixtures for the signer backends: a real SoftHSM2 token per test session, the Ledger and Trezor
device doubles on loopback, and helpers to build vaults owned by any signer.

Imported into tests/conftest.py. The SoftHSM2 tokens live in a session temp folder; ``$SOFTHSM2_CONF``
points there for the whole session (set before the PKCS#11 module is first loaded).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.signers.softhsm import SoftHsmToken, init_token
from tests.devices.ledger_double import LedgerDouble
from tests.devices.trezor_double import TrezorDouble

HSM_PIN = "482913"
HSM_SO_PIN = "77318245"
HSM_TOKEN = "custody-test"
HSM_PIN_TOKEN = "custody-pin"  # never kept logged in: for wrong-PIN tests
HSM_KEY = "conformance"
HSM_CANARY_TOKEN = "custody-canary"  # its PIN is the canary of tests/test_secret_canary.py
CANARY_PIN = "7305918264"
REPO = Path(__file__).resolve().parent.parent
HOT = REPO / "policies" / "hot.yaml"


@dataclass(frozen=True)
class Hsm:
    token: SoftHsmToken
    pin_file: Path
    so_pin_file: Path
    label: str = HSM_TOKEN
    pin_label: str = HSM_PIN_TOKEN

    @property
    def uri(self) -> str:
        return f"pkcs11:token={self.label};object={HSM_KEY}"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Hsm:
    folder = tmp_path_factory.mktemp("softhsm")
    pin_file, so_pin_file = folder / "user.pin", folder / "so.pin"
    pin_file.write_text(HSM_PIN + "\n")
    so_pin_file.write_text(HSM_SO_PIN + "\n")
    pin_file.chmod(0o600)
    token = init_token(folder, HSM_TOKEN, pin_file=pin_file, so_pin_file=so_pin_file)
    init_token(folder, HSM_PIN_TOKEN, pin_file=pin_file, so_pin_file=so_pin_file)
    canary_pin_file = folder / "canary.pin"
    canary_pin_file.write_text(CANARY_PIN + "\n")
    init_token(folder, HSM_CANARY_TOKEN, pin_file=canary_pin_file, so_pin_file=so_pin_file)
    token.activate()
    from custody.signers.pkcs11 import generate_key

    generate_key(HSM_TOKEN, HSM_KEY, pin_source=lambda _p: HSM_PIN)
    generate_key(HSM_PIN_TOKEN, HSM_KEY, pin_source=lambda _p: HSM_PIN)
    return Hsm(token=token, pin_file=pin_file, so_pin_file=so_pin_file)


@pytest.fixture
def hsm(softhsm: Hsm, monkeypatch: pytest.MonkeyPatch) -> Hsm:
    """The session token, with this test's environment naming the PIN file."""
    softhsm.token.activate()
    monkeypatch.setenv("CUSTODY_PKCS11_PIN_FILE", str(softhsm.pin_file))
    return softhsm


@pytest.fixture(scope="session")
def ledger_device() -> Iterator[LedgerDouble]:
    double = LedgerDouble().start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def ledger(ledger_device: LedgerDouble, monkeypatch: pytest.MonkeyPatch) -> LedgerDouble:
    ledger_device.reset()
    for name, value in ledger_device.env().items():
        monkeypatch.setenv(name, value)
    return ledger_device


@pytest.fixture(scope="session")
def trezor_device() -> Iterator[TrezorDouble]:
    double = TrezorDouble().start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def trezor(trezor_device: TrezorDouble, monkeypatch: pytest.MonkeyPatch) -> TrezorDouble:
    trezor_device.reset()
    for name, value in trezor_device.env().items():
        monkeypatch.setenv(name, value)
    return trezor_device


def policy_with_owners(folder: Path, owners: list[str], *, threshold: int, name: str, source: Path = HOT) -> Path:
    """A copy of a shipped template with its owners replaced (same limits, allowlists and timelock)."""
    text = source.read_text()
    block = "".join(f"    - address: {a}\n      label: owner-{i + 1}\n" for i, a in enumerate(owners))
    text = re.sub(
        r"owners:\n  threshold: \d+\n  signers:\n(?:    - .*\n      label: .*\n)+",
        f"owners:\n  threshold: {threshold}\n  signers:\n{block}",
        text,
    )
    text = re.sub(r"^name: .*$", f"name: {name}", text, flags=re.M)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path
