"""Test harness: one real Anvil per session, infrastructure deployed once, snapshot/revert per test.

Each test gets a fresh workspace folder (its own SQLite database) attached to the shared chain; the
chain is reverted to the post-infrastructure snapshot after the test, whatever its outcome.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from custody.chain.anvil import AnvilProcess
from custody.chain.connection import Chain, connect, next_utc_slot
from custody.cli import cli
from custody.contracts.infra import ensure_demo_token, ensure_infrastructure
from custody.session import Session
from custody.signers.local import anvil_address, anvil_signer
from custody.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def move_clock_to(chain: Chain, *, weekday: int = 1, hour: int = 10, minute: int = 0) -> int:
    """Mine a block at the next ``weekday`` (0 = Monday) ``hour``:``minute`` UTC at least a day ahead, and
    return its time. The shipped templates freeze transfers on Sundays 02:00-04:00 UTC and outside their
    allowed hours, so a test must not depend on the day it runs on: by default a Tuesday at 10:00."""
    when = next_utc_slot(chain.latest_timestamp(), weekday=weekday, hour=hour) + minute * 60
    chain.set_next_timestamp(when)
    chain.mine()
    return when


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    process = AnvilProcess()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def base_chain(anvil: AnvilProcess, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The session chain with Safe + custody infrastructure and the demo token deployed."""
    chain = connect(anvil.url, expected_chain_id=anvil.chain_id)
    workspace = Workspace(tmp_path_factory.mktemp("infra-ws"))
    ensure_infrastructure(chain, anvil_signer(0), workspace.store)  # includes the demo token on Anvil
    move_clock_to(chain)  # tests start on a Tuesday at 10:00 UTC whatever the wall clock says
    workspace.close()
    return chain


@pytest.fixture
def chain(base_chain: Chain) -> Iterator[Chain]:
    """The session chain, reverted to its pre-test state afterwards.

    What ``evm_revert`` leaves of a test is undone too, so that no test sees another's traces: the fee
    market (``Chain.revert``), transactions still in the mempool, and automine switched off."""
    snapshot = base_chain.snapshot()
    try:
        yield base_chain
    finally:
        revert_test_chain(base_chain, snapshot)


def revert_test_chain(chain: Chain, snapshot: str) -> None:
    """The chain back at ``snapshot`` with nothing of the test left in the node: state, clock and fee
    market (``Chain.revert``), no transaction pending in the mempool, automine on."""
    chain.revert(snapshot)
    chain.rpc("anvil_dropAllTransactions")
    chain.rpc("evm_setAutomine", [True])


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path / "ws").ensure()
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def session(chain: Chain, workspace: Workspace) -> Session:
    s = Session(workspace=workspace, chain=chain)
    s.infrastructure()  # records the (already deployed) infrastructure in this workspace
    return s


@pytest.fixture
def fresh_session(tmp_path: Path) -> Iterator[Session]:
    """A session on its own brand-new Anvil, for reorg tests.

    ``anvil_reorg`` rebuilds the fork from Anvil's per-block-number state cache, which ``evm_revert``
    does not invalidate: on the shared, snapshot-reverted chain a reorg can resume from a state that
    belongs to a reverted history (contracts vanish). A chain without revert history is exact.
    """
    anvil = AnvilProcess()
    anvil.start()
    ws = Workspace(tmp_path / "fresh-ws").ensure()
    try:
        chain = connect(anvil.url, expected_chain_id=anvil.chain_id)
        session = Session(workspace=ws, chain=chain)
        session.infrastructure()
        move_clock_to(chain)  # a Tuesday at 10:00 UTC, as on the shared chain
        yield session
    finally:
        ws.close()
        anvil.stop()


@pytest.fixture
def demo_token(session: Session) -> str:
    return ensure_demo_token(session.chain, session.sender).address


@pytest.fixture
def cli_env(anvil: AnvilProcess, chain: Chain, workspace: Workspace) -> dict[str, str]:
    return {"CUSTODY_HOME": str(workspace.home), "CUSTODY_RPC": anvil.url}


@pytest.fixture
def run_cli(cli_env: dict[str, str]):
    """Invoke the real click entry point; returns the result (exit code, stdout, stderr)."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        try:
            runner = CliRunner(mix_stderr=False)  # click < 8.2 (pinned by eth-ape)
        except TypeError:
            runner = CliRunner()
        merged = {**cli_env, **(env or {})}
        return runner.invoke(cli, list(args), input=input, env=merged, catch_exceptions=False)

    return invoke


def owner(i: int) -> str:
    return anvil_address(i)


def fund(session: Session, address: str, wei: int) -> None:
    session.send(to=address, value=wei, what="test funding")


@pytest.fixture(autouse=True)
def _no_ambient_custody_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CUSTODY_"):
            monkeypatch.delenv(name, raising=False)


from tests.signer_fixtures import (  # noqa: E402,F401  (fixtures for the signer backends)
    hsm,
    ledger,
    ledger_device,
    softhsm,
    trezor,
    trezor_device,
)


# -- audit ledger: a throwaway PostgreSQL for the session, and the ledger suite's backend matrix --------
@pytest.fixture(scope="session")
def postgres():
    from tests.pg import ThrowawayPostgres

    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_store(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty workspace database on each backend (SQLite file / new PostgreSQL schema)."""
    from custody.store import Store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres").fresh_schema_url()
    store = Store(url)
    try:
        yield store
    finally:
        store.close()


# -- tiers: tests that need infrastructure are marked `infra`; `scripts/test --fast` runs the rest ----------
INFRA_FIXTURES = frozenset({"anvil", "base_chain", "chain", "session", "fresh_session", "cli_env", "run_cli",
                            "postgres", "softhsm", "hsm", "demo_token"})  # fmt: skip
INFRA_FILES = frozenset({"test_slither.py", "test_build.py", "test_ape.py", "test_gas_snapshot.py",
                         "test_mutation_sample.py", "test_chain.py", "test_cli_chain.py", "test_pilot.py"})  # fmt: skip
# chain-free but spawning processes or appending thousands of entries: not the seconds-long fast tier
HEAVY_TESTS = frozenset({
    "test_tampering_with_10000_entries_is_always_detected_at_the_first_bad_sequence",
    "test_sigkill_during_1000_appends_loses_no_acknowledged_entry",
    "test_two_processes_appending_at_once_cannot_fork_the_log",
    "test_power_loss_keeps_every_acknowledged_ledger_entry",
    "test_control_synchronous_off_loses_acknowledged_rows_under_the_same_cut",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        heavy = getattr(item, "originalname", item.name) in HEAVY_TESTS
        if names & INFRA_FIXTURES or params.get("ledger_store") == "postgres" or item.path.name in INFRA_FILES or heavy:
            item.add_marker(pytest.mark.infra)
