"""Drills end to end: every shipped playbook runs green through the CLI and the Python API on the
session Anvil (snapshot mode), its report lists every step with expected vs observed, timings and
actors, the chain is exactly as before; a wrong expectation fails the drill with exit code 2 and a
per-field diff naming the step; a broken playbook is reported file:line:field; live, fork and
``--vault`` runs do what they say.

The drills share one module-wide workspace on the session chain: a snapshot drill works in a scratch
copy of it and reverts the chain, so nothing needs resetting between them (which is itself asserted).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from custody.cli import cli
from custody.drills import DrillOptions, load_playbook, registry, run_drill
from custody.drills.model import REF
from custody.session import Session
from custody.signers.local import anvil_address
from custody.store import vaults as vaults_table
from custody.vault import service
from custody.workspace import Workspace
from tests.conftest import REPO

PLAYBOOKS = REPO / "playbooks"
NAMES = ("emergency-exit", "key-loss", "rpc-outage", "signer-rotation", "vault-compromise-isolation")
CUSTODIAN = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"  # anvil:5, regulated fallback custodian
SECONDARY = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"  # anvil:6, secondary custodian
BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # allowlisted destination in the drill template
ATTACKER = "0x000000000000000000000000000000000000dEaD"
WATCHED = (CUSTODIAN, SECONDARY, BROKER, ATTACKER, anvil_address(0), anvil_address(1))


@pytest.fixture(scope="module")
def drill_ws(base_chain, tmp_path_factory) -> Workspace:
    """One workspace for the module's snapshot drills (the infrastructure recorded, no vault)."""
    ws = Workspace(tmp_path_factory.mktemp("drills") / "ws").ensure()
    Session(workspace=ws, chain=base_chain).infrastructure()
    try:
        yield ws
    finally:
        ws.close()


def _invoke(env: dict[str, str], *args: str):
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2 (pinned by eth-ape)
    except TypeError:
        runner = CliRunner()
    return runner.invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def drill_cli(anvil, drill_ws):
    env = {"CUSTODY_HOME": str(drill_ws.home), "CUSTODY_RPC": anvil.url}
    return lambda *args: _invoke(env, *args)


def fingerprint(chain) -> dict:
    """What a restored chain must match: head block (number, hash, time), watched balances and nonces."""
    w3 = chain.w3
    head = w3.eth.get_block("latest")
    return {
        "block": head["number"], "hash": head["hash"].hex(), "timestamp": head["timestamp"],
        "balances": {a: w3.eth.get_balance(a) for a in WATCHED},
        "nonces": {a: w3.eth.get_transaction_count(a) for a in WATCHED},
    }  # fmt: skip


def _vault_names(ws: Workspace) -> list[str]:
    with ws.store.connect() as conn:
        return [r.name for r in conn.execute(vaults_table.select())]


def check_report(data: dict, playbook_path: Path, *, mode: str = "snapshot") -> None:
    """The report lists every step of the playbook with expected vs observed, timings and actors."""
    book = load_playbook(playbook_path)
    n = len(book.steps)
    assert data["drill"]["name"] == book.name and data["drill"]["playbook_sha256"] == book.sha256
    assert data["verdict"] == "passed", json.dumps(data["failures"], indent=1)
    assert data["summary"] == {"steps": n, "passed": n, "failed": 0, "skipped": 0} and data["failures"] == []
    run = data["run"]
    assert run["mode"] == mode and run["operator"] == anvil_address(0)
    started = dt.datetime.fromisoformat(run["started_at"])
    finished = dt.datetime.fromisoformat(run["finished_at"])
    assert started <= finished and run["seconds"] > 0
    assert [(s["index"], s["name"], s["action"], s["line"]) for s in data["steps"]] == [
        (st.index + 1, st.name, st.action, st.line) for st in book.steps
    ]
    for step, spec in zip(data["steps"], book.steps):
        where = f"step {step['index']} ({step['name']})"
        assert step["verdict"] == "passed" and step["diff"] == [], where
        # expected: the playbook's expectation, parameters filled in
        assert step["expected"]["ok"] == spec.expect.ok, where
        assert not REF.search(json.dumps(step["expected"])), f"{where}: unresolved parameter in {step['expected']}"
        if spec.expect.error:
            assert step["expected"]["error"] == spec.expect.error
        observed = step["observed"]
        assert observed["ok"] is spec.expect.ok and isinstance(observed["data"], dict), where
        if not spec.expect.ok:
            assert observed["error"] and observed["message"], where
            assert spec.expect.error in (*observed["error_kinds"], observed["onchain_error"]), where
        # timings
        assert isinstance(step["seconds"], float) and 0 <= step["seconds"] <= run["seconds"], where
        assert started <= dt.datetime.fromisoformat(step["started_at"]) <= finished, where
        # actors: who the playbook names (parameters resolved), or the operator paying gas
        assert step["actor"], where
        for actor in step["actor"]:
            assert actor["address"].startswith("0x") and len(actor["address"]) == 42, where
        if spec.actor:
            assert all(":" in a["uri"] and "{" not in a["uri"] for a in step["actor"]), where
        else:
            assert step["actor"] == [{"uri": "anvil:0", "address": anvil_address(0), "role": "operator (pays gas)"}]
    assert sum(s["seconds"] for s in data["steps"]) <= run["seconds"]
    # the files: JSON as returned, HTML naming every step
    json_path, html_path = Path(data["files"]["json"]), Path(data["files"]["html"])
    assert json.loads(json_path.read_text()) == data
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "PASSED" in page and "<script" not in page
    for step in data["steps"]:
        assert html.escape(step["name"]) in page, step["name"]
    assert f"{n} of {n} steps as expected" in page
    assert data["rpc"]["duplicate_nonce_broadcasts"] == []


def check_facts(name: str, data: dict) -> None:
    """What each drill demonstrated, beyond every expectation holding."""
    steps = {s["name"]: s["observed"] for s in data["steps"]}
    if name == "emergency-exit":
        final = steps["anyone finalizes; every listed asset goes to the custodian"]["data"]
        assert final["custodian"] == CUSTODIAN and final["swept"] == {"ETH": "40", "dUSD": "50000"}
        assert final["custodian_received"] == final["swept"]
        assert steps["one signature is below the quorum — nothing is sent"]["message"].endswith("nothing was sent")
    elif name == "key-loss":
        assert len(steps["two owner keys are lost"]["data"]["lost"]) == 2
        final = steps["the exit is finalized; every asset reaches the fallback custodian"]["data"]
        assert final["swept"] == {"ETH": "30", "dUSD": "25000"}
    elif name == "rpc-outage":
        rpc = data["rpc"]
        assert rpc["faults_injected"] >= 5 and rpc["broadcasts"] > rpc["distinct_transactions"] > 0
        resumed = steps["resuming adopts the journaled transaction — no second payment"]["data"]
        assert resumed["resumed"] is True and resumed["same_transaction"] is True and resumed["rebroadcasts"] == 0
        assert steps["a transfer fails fast with a clear error (bounded wait)"]["error"] == "RpcUnreachable"
    elif name == "signer-rotation":
        key = steps["a new officer key is generated"]["data"]["address"]
        rotated = steps["the owners schedule swapping the leaving officer for the new key"]["data"]
        assert rotated["new"] == key and rotated["old"] == anvil_address(3) and rotated["delay_s"] == 3600
    elif name == "vault-compromise-isolation":
        assert steps["the vaults share no contract (Safe, timelock, guard, exit module)"]["data"]["components"] == 12
        held = steps[
            "forced past the pre-flight, the risk engine holds it (a first-time destination is a WARN that needs "
            "an out-of-band confirmation and a third signer)"
        ]
        assert held["error"] == "RiskRequirementMissing" and "first_time_destination" in held["message"]


@pytest.mark.parametrize("name", NAMES)
def test_playbook_through_the_cli(name, drill_cli, drill_ws, base_chain, tmp_path):
    before = fingerprint(base_chain)
    result = drill_cli("drill", "run", str(PLAYBOOKS / f"{name}.yaml"), "--json", "--out", str(tmp_path / "report"))
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    check_report(data, PLAYBOOKS / f"{name}.yaml")
    check_facts(name, data)
    assert Path(data["files"]["json"]).parent == tmp_path / "report"
    assert f"step {len(data['steps'])}/{len(data['steps'])}" in result.stderr  # progress on stderr
    # restored: same head block, balances and nonces; nothing left in the workspace
    chain = data["run"]["chain"]
    assert chain["restored"] is True and chain["block_start"] == before["block"] < chain["block_end"]
    assert fingerprint(base_chain) == before
    assert _vault_names(drill_ws) == []


@pytest.mark.parametrize("name", NAMES)
def test_playbook_through_the_python_api(name, drill_ws, base_chain, tmp_path):
    before = fingerprint(base_chain)
    messages: list[str] = []
    report = run_drill(
        drill_ws, load_playbook(PLAYBOOKS / f"{name}.yaml"), DrillOptions(out=tmp_path), chain=base_chain,
        progress=messages.append,
    )  # fmt: skip
    assert report.passed and report.failures == []
    assert (report.json_path, report.html_path) == (tmp_path / "report.json", tmp_path / "report.html")
    check_report(report.data, PLAYBOOKS / f"{name}.yaml")
    check_facts(name, report.data)
    assert sum(m.startswith("step ") for m in messages) == len(report.data["steps"])
    assert report.data["run"]["chain"]["restored"] is True
    assert fingerprint(base_chain) == before and _vault_names(drill_ws) == []


def _copy(name: str, folder: Path, old: str, new: str) -> Path:
    """A copy of a shipped playbook with one text replaced (the template path made absolute)."""
    text = (PLAYBOOKS / f"{name}.yaml").read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {name}.yaml"
    text = text.replace(old, new).replace("templates/drill-vault.yaml", str(PLAYBOOKS / "templates/drill-vault.yaml"))
    path = folder / f"{name}-wrong.yaml"
    path.write_text(text)
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_wrong_expectation_fails_the_drill_with_a_per_field_diff(drill_cli, base_chain, tmp_path):
    wrong = _copy("emergency-exit", tmp_path, 'balance: {of: main, asset: ETH, equals: "0"}',
                  'balance: {of: main, asset: ETH, equals: "1"}')  # fmt: skip
    step_line = _line_of(wrong, "- name: anyone finalizes")
    before = fingerprint(base_chain)
    result = drill_cli("drill", "run", str(wrong), "--json", "--out", str(tmp_path / "report"))
    assert result.exit_code == 2, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "failed"
    assert data["summary"] == {"steps": 13, "passed": 10, "failed": 1, "skipped": 2}
    assert data["failures"] == [{
        "step": 11, "name": "anyone finalizes; every listed asset goes to the custodian", "line": step_line,
        "diff": [{"field": "balance of main (ETH)", "expected": "= 1", "observed": "0"}],
    }]  # fmt: skip
    failed = data["steps"][10]
    assert failed["verdict"] == "failed" and failed["observed"]["ok"] is True  # the action worked; the check did not
    assert failed["expected"]["balance"] == [{"of": "main", "asset": "ETH", "equals": "1"}]
    for skipped in data["steps"][11:]:
        assert skipped["verdict"] == "skipped" and skipped["observed"] is None and skipped["seconds"] is None
    assert "✗ balance of main (ETH): expected = 1, observed 0" in Path(data["files"]["html"]).read_text()
    assert data["run"]["chain"]["restored"] is True and fingerprint(base_chain) == before


def test_failed_drill_human_output_and_continue_on_failure(drill_cli, tmp_path):
    """Human output names the step, its file:line and each differing field; with continue_on_failure
    later steps still run; an action's error where success was expected is an `outcome` diff."""
    book = tmp_path / "short.yaml"
    book.write_text(f"""version: 1
name: short-failure
title: A drill that fails twice
continue_on_failure: true
params: {{broker: "{BROKER}"}}
steps:
  - name: a key is generated
    action: generate_key
    as: temp
  - name: the broker holds an impossible balance
    action: assert_balance
    of: "{{broker}}"
    at_least: "123456789"
  - name: an asset nobody defined
    action: assert_balance
    of: key:temp
    asset: NOPE
    equals: "0"
  - name: the key is still usable
    action: assert_balance
    of: key:temp
    equals: "0"
""")
    result = drill_cli("drill", "run", str(book), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.stdout + result.stderr
    out = " ".join(result.stdout.split())  # rich may wrap long lines
    line2, line3 = _line_of(book, "impossible balance"), _line_of(book, "an asset nobody defined")
    assert f"step 2 ({book}:{line2}) the broker holds an impossible balance" in out
    assert f"- expected balance of {BROKER} (ETH): >= 123456789" in out
    assert f"step 3 ({book}:{line3}) an asset nobody defined" in out
    assert "- expected outcome: ok" in out and "+ observed outcome: InputError: unknown asset 'NOPE'" in out
    assert "- expected balance of key:temp (NOPE): equals 0" in out
    assert "drill short-failure failed: step(s) 2, 3 did not go as expected" in " ".join(result.stderr.split())
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [s["verdict"] for s in data["steps"]] == ["passed", "failed", "failed", "passed"]
    assert data["steps"][1]["expected"]["balance"] == [{"of": BROKER, "asset": "ETH", "at_least": "123456789"}]
    assert data["steps"][2]["observed"]["error"] == "InputError"


def test_check_reports_file_line_field_problems(drill_cli, tmp_path):
    good = [str(PLAYBOOKS / f"{n}.yaml") for n in NAMES]
    ok = drill_cli("drill", "check", *good, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {"ok": True, "files": {f: [] for f in good}}
    broken = tmp_path / "broken.yaml"
    broken.write_text("""version: 1
name: Broken_Name
title: a broken playbook
params:
  custodian: "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
setup:
  vaults:
    - {as: main, template: templates/missing.yaml}
steps:
  - name: typo in the action
    action: finalise_exit
    vault: main
  - name: unknown vault alias
    action: initiate_exit
    vault: mian
    custodian: "{custodian}"
  - name: an amount that is not a decimal
    action: transfer
    actor: anvil:1
    vault: main
    to: "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
    amount: "1,5"
  - name: an unknown parameter
    action: sign_exit
    actor: "{council}"
    vault: main
    custodian: "{custodian}"
  - name: contradictory expectation
    action: assert_state
    vault: main
    paused: false
    expect: {ok: true, error: VaultError}
""")
    result = drill_cli("drill", "check", str(broken), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    problems = [(p["file"], p["line"], p["field"]) for p in report["files"][str(broken)]]
    f = str(broken)
    assert problems == [
        (f, 2, "name"), (f, 8, "setup.vaults[0].template"), (f, 11, "steps[0].action"), (f, 15, "steps[1].vault"),
        (f, 22, "steps[2].amount"), (f, 25, "steps[3].actor"), (f, 32, "steps[4].expect.ok"),
    ]  # fmt: skip
    messages = [p["message"] for p in report["files"][f]]
    assert "did you mean 'finalize_exit'?" in messages[2] and "unknown vault 'mian'" in messages[3]
    assert "unknown parameter {council}" in messages[5] and "contradicts an expected error" in messages[6]
    human = drill_cli("drill", "check", str(broken), *good)
    assert human.exit_code == 1
    assert f"error {f}:11: steps[0].action: unknown action 'finalise_exit'" in human.stdout
    assert all(f"ok   {g}" in human.stdout for g in good)
    run = drill_cli("drill", "run", str(broken))
    assert run.exit_code == 1 and "has 7 problem(s)" in run.stderr and f"{f}:2: name" in run.stderr


def test_actions_listing_covers_every_playbook_step(drill_cli):
    result = drill_cli("drill", "actions", "--json")
    assert result.exit_code == 0
    listed = {a["action"]: a for a in json.loads(result.stdout)}
    assert set(listed) == set(registry())
    used = {s.action for n in NAMES for s in load_playbook(PLAYBOOKS / f"{n}.yaml").steps}
    assert used <= set(listed)
    assert {p["name"] for p in listed["rpc_fault"]["params"]} == {"mode", "method", "for", "after"}
    assert listed["transfer"]["actor"] == "signers" and listed["finalize_exit"]["actor"] == "none"


def test_live_run_keeps_its_result_and_takes_parameters(run_cli, session, tmp_path):
    """--live on the workspace's own chain: nothing restored, the drill vault stays; --param overrides."""
    chain = session.chain
    before = fingerprint(chain)
    result = run_cli("drill", "run", str(PLAYBOOKS / "key-loss.yaml"), "--live", "--json",
                     "--param", f"custodian={SECONDARY}", "--out", str(tmp_path / "r"))  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    check_report(data, PLAYBOOKS / "key-loss.yaml", mode="live")
    assert data["params"]["custodian"] == SECONDARY
    assert data["steps"][7]["observed"]["data"]["custodian"] == SECONDARY
    info = data["run"]["chain"]
    assert info["restored"] is False and info["block_end"] == chain.w3.eth.block_number > before["block"]
    assert chain.w3.eth.get_balance(SECONDARY) - before["balances"][SECONDARY] == 30 * 10**18
    kept = service.get_vault(session, data["vaults"][0]["name"])
    assert kept.safe == data["vaults"][0]["safe"] and chain.w3.eth.get_balance(kept.safe) == 0
    unknown = run_cli("drill", "run", str(PLAYBOOKS / "key-loss.yaml"), "--param", "nope=1")
    assert unknown.exit_code == 1 and "has no parameter 'nope'" in unknown.stderr


def test_rehearse_on_an_existing_vault_without_touching_it(session, tmp_path):
    """--vault: the playbook's subject is a real vault; the snapshot keeps it as it was."""
    record, _ = service.create_vault(session, PLAYBOOKS / "templates/drill-vault.yaml", name="treasury")
    session.send(to=record.safe, value=12 * 10**18, what="fund")
    before = fingerprint(session.chain)
    options = DrillOptions(vault="treasury", out=tmp_path)
    report = run_drill(session.workspace, load_playbook(PLAYBOOKS / "key-loss.yaml"), options, chain=session.chain)
    check_report(report.data, PLAYBOOKS / "key-loss.yaml")
    assert report.data["run"]["subject_vault"] == "treasury"
    assert report.data["vaults"] == [{"alias": "main", "name": "treasury", "safe": record.safe,
                                      "timelock": record.timelock, "exit_module": record.exit_module,
                                      "created": False, "funded": []}]  # fmt: skip
    assert report.data["steps"][7]["observed"]["data"]["swept"] == {"ETH": "12", "dUSD": "0"}
    assert fingerprint(session.chain) == before and session.chain.w3.eth.get_balance(record.safe) == 12 * 10**18
    assert _vault_names(session.workspace) == ["treasury"]


def test_fork_mode_rehearses_on_a_throwaway_fork(anvil, drill_ws, base_chain, tmp_path):
    before = fingerprint(base_chain)
    options = DrillOptions(fork_url=anvil.url, out=tmp_path)
    report = run_drill(drill_ws, load_playbook(PLAYBOOKS / "key-loss.yaml"), options)
    check_report(report.data, PLAYBOOKS / "key-loss.yaml", mode="fork")
    info = report.data["run"]["chain"]
    assert info["fork_url"] == anvil.url and info["fork_block"] == before["block"] and info["url"] != anvil.url
    assert info["restored"] is False and fingerprint(base_chain) == before
    assert "fork of" in report.html_path.read_text()
