"""A workspace is bound to its chain: a look-alike Anvil (same chain id, other genesis) and a reset chain (same
genesis, the recorded blocks gone) are refused by every command with one sentence — also the commands that take
their own endpoint (`audit verify --rpc`, `audit export --format html --rpc`, `drill run --fork-url`) and the
library's `Session.open` — nothing is written, and the workspace keeps working against its own chain afterwards.
`chain status` names a local chain restarted without its saved state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from custody.chain.anvil import AnvilProcess, rpc_call
from custody.chain.connection import connect
from custody.cli import cli
from custody.exceptions import ForeignChain
from custody.session import Session
from custody.vault.service import list_vaults
from tests.conftest import POLICIES, move_clock_to, owner

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"

GENESIS_TIME = 1_767_000_000  # any fixed past instant: two Anvils started with it share a genesis block
SETTLEMENT = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # on hot-ops' ETH allowlist


def _anvil(genesis_time: int) -> AnvilProcess:
    return AnvilProcess(extra_args=["--timestamp", str(genesis_time)]).start()


@pytest.fixture
def own_chain() -> Iterator[AnvilProcess]:
    process = _anvil(GENESIS_TIME)
    chain = connect(process.url)
    move_clock_to(chain)  # the shipped templates freeze transfers on Sunday nights: a Tuesday at 10:00 UTC
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def foreign_chain() -> Iterator[AnvilProcess]:
    """Another Anvil with the same chain id (31337), started at another time: another genesis."""
    process = _anvil(GENESIS_TIME + 1000)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def reset_chain() -> Iterator[AnvilProcess]:
    """The workspace's chain as it is after a reset: the same genesis block, none of the later blocks."""
    process = _anvil(GENESIS_TIME)
    try:
        yield process
    finally:
        process.stop()


def _cli(home: Path, rpc: str, *args: str):
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2 (pinned by eth-ape)
    except TypeError:
        runner = CliRunner()
    return runner.invoke(cli, ["--home", str(home), "--rpc", rpc, *args], catch_exceptions=False)


def _workspace_contents(home: Path) -> dict[str, object]:
    """Every row of the workspace database and every other file's bytes."""
    contents: dict[str, object] = {}
    db = sqlite3.connect(home / "custody.db")
    try:
        contents["custody.db"] = list(db.iterdump())
    finally:
        db.close()
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.startswith("custody.db"):
            contents[str(path.relative_to(home))] = path.read_bytes()
    return contents


def _block_number(process: AnvilProcess) -> int:
    return int(rpc_call(process.url, "eth_blockNumber"), 16)


COMMANDS = [
    ("vault", "list"),
    ("vault", "show", "hot-ops"),
    ("vault", "create", str(POLICIES / "warm.yaml")),
    ("tx", "propose", "hot-ops", "--to", SETTLEMENT, "--amount", "1", "--proposer", "anvil:3"),
    ("tx", "list"),
    ("tx", "show", "1"),
    ("tx", "sign", "1", "--signer", "anvil:1"),
    ("tx", "execute", "1"),
    ("audit", "index"),
    ("audit", "verify"),
]


def test_look_alike_and_reset_chains_are_refused_and_nothing_is_written(
    tmp_path: Path, own_chain: AnvilProcess, foreign_chain: AnvilProcess, reset_chain: AnvilProcess
) -> None:
    home = tmp_path / "ws"
    created = _cli(home, own_chain.url, "vault", "create", str(POLICIES / "hot.yaml"), "--json")
    assert created.exit_code == 0, created.stderr
    safe = json.loads(created.stdout)["safe"]
    rpc_call(own_chain.url, "anvil_setBalance", [safe, hex(10**19)])
    proposed = _cli(
        home, own_chain.url, "tx", "propose", "hot-ops", "--to", SETTLEMENT, "--amount", "1", "--proposer", "anvil:3"
    )
    assert proposed.exit_code == 0, proposed.stderr
    before = _workspace_contents(home)

    foreign_start, reset_start = _block_number(foreign_chain), _block_number(reset_chain)
    for url, expected in [
        (foreign_chain.url, f"error: {foreign_chain.url} serves chain id 31337 but genesis block "),
        (reset_chain.url, f"error: {reset_chain.url} has the genesis of chain 31337 but block "),
    ]:
        # commands that take their own endpoint are checked on it too
        own_endpoint = [
            ("audit", "verify", "--rpc", url),
            ("audit", "export", "--format", "html", "--out", str(home / "report.html"), "--rpc", url),
            ("drill", "run", str(PLAYBOOKS / "key-loss.yaml"), "--fork-url", url),
        ]
        for command in [*COMMANDS, *own_endpoint]:
            result = _cli(home, url, *command)
            assert result.exit_code == 5, (command, result.stdout, result.stderr)
            first_line, *rest = result.stderr.strip().splitlines()
            assert first_line.startswith(expected), (command, result.stderr)
            assert first_line.endswith("so nothing was written"), (command, result.stderr)
            assert [line.split(":")[0] for line in rest] == ["hint"], (command, result.stderr)
            assert result.stdout == ""
            as_json = _cli(home, url, *command, "--json")
            assert as_json.exit_code == 5
            error = json.loads(as_json.stdout)
            assert error["error"] == "ForeignChain" and error["message"] == first_line.removeprefix("error: ")
            assert _workspace_contents(home) == before, command
        # the library's entry point refuses the same way, before anything is written
        with pytest.raises(ForeignChain) as refused:
            Session.open(home, rpc=url, autostart=False)
        assert refused.value.message.startswith(expected.removeprefix("error: "))
        assert _workspace_contents(home) == before
    # nothing was sent to the other chains either (no infrastructure re-deployed, no vault created there)
    assert (_block_number(foreign_chain), _block_number(reset_chain)) == (foreign_start, reset_start)

    # the workspace still works against its own chain
    session = Session.open(home, rpc=own_chain.url, autostart=False)
    try:
        assert [v.name for v in list_vaults(session)] == ["hot-ops"]
    finally:
        session.close()
    shown = _cli(home, own_chain.url, "vault", "show", "hot-ops", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["safe"] == safe
    signed = _cli(home, own_chain.url, "tx", "sign", "1", "--signer", "anvil:1")
    assert signed.exit_code == 0, signed.stderr
    executed = _cli(home, own_chain.url, "tx", "execute", "1", "--json")
    assert executed.exit_code == 0, executed.stderr
    assert rpc_call(own_chain.url, "eth_getBalance", [SETTLEMENT, "latest"]) != "0x0"
    listed = _cli(home, own_chain.url, "vault", "list", "--json")
    assert [v["name"] for v in json.loads(listed.stdout)] == ["hot-ops"]
    assert owner(1) in json.loads(listed.stdout)[0]["owners"]


def test_status_repair_and_forget_are_explicit_and_recorded(
    tmp_path: Path, own_chain: AnvilProcess, reset_chain: AnvilProcess
) -> None:
    from custody.audit.record import ledger_for
    from custody.workspace import Workspace

    home = tmp_path / "ws"
    assert _cli(home, own_chain.url, "vault", "create", str(POLICIES / "hot.yaml")).exit_code == 0
    ok = _cli(home, own_chain.url, "workspace", "status", "--json")
    assert ok.exit_code == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["current"]["matches"] is True
    assert [v["name"] for v in report["chains"][0]["vaults"]] == ["hot-ops"]
    bad = _cli(home, reset_chain.url, "workspace", "status", "--json")
    assert bad.exit_code == 5
    assert json.loads(bad.stdout)["current"]["problem"].startswith(
        f"{reset_chain.url} has the genesis of chain 31337 but block "
    )

    # a deliberate reset: repair binds the chain id anew and forgets what the chain no longer holds, in the ledger
    repaired = _cli(home, reset_chain.url, "workspace", "repair", "--reason", "chain reset on purpose", "--json")
    assert repaired.exit_code == 0, repaired.stderr
    done = json.loads(repaired.stdout)
    assert [v["vault"] for v in done["vaults_forgotten"]] == ["hot-ops"] and done["deployments_forgotten"]
    listed = _cli(home, reset_chain.url, "vault", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []

    # forget needs a reason and a known vault, and works without any chain
    assert _cli(home, reset_chain.url, "vault", "create", str(POLICIES / "hot.yaml")).exit_code == 0
    # once records of the re-bound chain exist, the old chain (same genesis, other blocks) is the stranger
    assert _cli(home, own_chain.url, "vault", "list").exit_code == 5
    assert _cli(home, "http://127.0.0.1:9", "vault", "forget", "hot-ops").exit_code == 2  # --reason missing
    unknown = _cli(home, "http://127.0.0.1:9", "vault", "forget", "nope", "--reason", "typo")
    assert unknown.exit_code == 1 and "error: no vault 'nope' in this workspace (known: hot-ops)" in unknown.stderr
    forgot = _cli(home, "http://127.0.0.1:9", "vault", "forget", "hot-ops", "--reason", "test vault", "--json")
    assert forgot.exit_code == 0, forgot.stderr
    assert _cli(home, reset_chain.url, "vault", "list", "--json").stdout.strip() == "[]"
    workspace = Workspace(home)
    try:
        kinds = [e.kind for e in ledger_for(workspace.store).entries()]
    finally:
        workspace.close()
    assert kinds.count("vault_forgotten") == 2 and kinds.count("workspace_repaired") == 1
    assert kinds[-1] == "vault_forgotten"


def test_chain_status_names_a_local_chain_restarted_without_its_state(tmp_path: Path) -> None:
    home = tmp_path / "ws"

    def run(*args: str):
        try:
            runner = CliRunner(mix_stderr=False)  # click < 8.2 (pinned by eth-ape)
        except TypeError:
            runner = CliRunner()
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    try:
        assert run("vault", "create", str(POLICIES / "hot.yaml")).exit_code == 0  # auto-starts the local chain
        ok = run("chain", "status", "--json")
        assert ok.exit_code == 0, ok.stderr
        assert json.loads(ok.stdout)["binding"] == {"matches": True, "problem": None}
        stopped = json.loads(run("chain", "down", "--json").stdout)
        Path(stopped["state_file"]).unlink()  # the saved state is lost: the next chain is a reset one
        url = json.loads(run("chain", "up", "--json").stdout)["url"]
        status = run("chain", "status", "--json")
        assert status.exit_code == 5
        binding = json.loads(status.stdout)["binding"]
        assert binding["matches"] is False
        assert binding["problem"].startswith(f"{url} serves chain id 31337 but ") or binding["problem"].startswith(
            f"{url} has the genesis of chain 31337 but block "
        )
        human = run("chain", "status")
        assert human.exit_code == 5 and human.stdout.splitlines()[1] == binding["problem"]
        assert run("vault", "list").exit_code == 5
    finally:
        run("chain", "down")
