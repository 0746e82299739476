"""scripts/daily_report.py, refill_hot.py and rotate_signer.py: written against the public API, run on Anvil."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import custody
from custody.signers.keystore import PASSPHRASE_ENV, create_keystore
from custody.signers.local import anvil_address, anvil_private_key
from tests.conftest import POLICIES, REPO

PASSPHRASE = "scripts-test-only-passphrase"
SCRIPTS = ("daily_report", "refill_hot", "rotate_signer")
HOT_REFILL_LINE = "address: 0x14dC79964da2C08b23698B3D3cc7Ca32193d9955\n        label: hot-vault-refill"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = load_script(name).main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.err
    return code, json.loads(out.out)


def script_env() -> dict[str, str]:
    """A shell's environment: no PYTHONPATH, no custody settings (the script must find this tree itself)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CUSTODY_")}


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_has_help_and_needs_no_chain_for_it(name: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), "--help"], capture_output=True,
                          text=True, env=script_env(), cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {name}.py") and "--home" in done.stdout and "--json" in done.stdout


@pytest.fixture
def treasury(anvil, chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A workspace with hot-ops (hot.yaml) and warm-treasury (warm.yaml allowlisting hot-ops' Safe), both funded."""
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    home = tmp_path / "ops-ws"
    for i in (1, 2, 4):
        create_keystore(home / "keystores" / f"officer-{i}.json", anvil_private_key(i), PASSPHRASE, kdf="pbkdf2")
    with custody.open(home=home, rpc=anvil.url) as ws:
        hot = ws.create_vault(POLICIES / "hot.yaml")
        text = (POLICIES / "warm.yaml").read_text(encoding="utf-8")
        assert HOT_REFILL_LINE in text
        warm_template = tmp_path / "warm.yaml"
        warm_template.write_text(text.replace(HOT_REFILL_LINE, f"address: {hot.safe}\n        label: hot-vault-refill"))
        warm = ws.create_vault(warm_template)
        hot.fund("3")
        warm.fund("40")
    return {"home": str(home), "rpc": anvil.url, "hot": hot.safe, "warm": warm.safe}


def test_refill_hot_then_daily_report(treasury: dict, chain, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--home", treasury["home"], "--rpc", treasury["rpc"])
    _code, dry = run_script("refill_hot", *where, "--target", "10", "--dry-run", "--json", capsys=capsys)
    assert (dry["hot_balance"], dry["refill"], dry["tx_hash"]) == ("3", "7", None)
    _code, done = run_script("refill_hot", *where, "--target", "10.25", "--signer", "keystore:officer-1",
                             "--signer", "keystore:officer-2", "--json", capsys=capsys)  # fmt: skip
    assert done["refill"] == "7.25" and done["hot_balance_after"] == "10.25"
    assert chain.w3.eth.get_balance(treasury["hot"]) == 1025 * 10**16
    assert chain.w3.eth.get_transaction_receipt(done["tx_hash"])["status"] == 1
    _code, again = run_script("refill_hot", *where, "--target", "10", "--json", capsys=capsys)
    assert again["refill"] == "0" and again["proposal"] is None  # full already: nothing proposed
    # capped: the shortfall (60) is above --max, so only --max is sent
    _code, capped = run_script("refill_hot", *where, "--target", "70.25", "--max", "1.5", "--dry-run", "--json",
                               capsys=capsys)  # fmt: skip
    assert capped["refill"] == "1.5"

    _code, report = run_script("daily_report", *where, "--json", capsys=capsys)
    by_name = {v["name"]: v for v in report["vaults"]}
    assert by_name["hot-ops"]["balances"]["ETH"] == "10.25"
    assert by_name["warm-treasury"]["balances"]["ETH"] == "32.75"
    assert by_name["warm-treasury"]["owners"] == "2-of-3" and by_name["warm-treasury"]["executed_proposals"] == 1
    assert by_name["warm-treasury"]["guard_policy_matches_template"] is True
    assert report["audit"]["verdict"] == "ok" and report["audit"]["entries"] > 0
    assert load_script("daily_report").main([*where]) == 0
    text = capsys.readouterr().out
    assert "hot-ops (hot)" in text and "10.25 ETH" in text and "audit ledger: ok" in text


def test_refill_refused_by_the_warm_policy_names_the_rule(treasury: dict, capsys) -> None:
    where = ("--home", treasury["home"], "--rpc", treasury["rpc"])
    code = load_script("refill_hot").main([*where, "--target", "100", "--max", "60", "--signer", "keystore:officer-1"])
    err = capsys.readouterr().err
    assert code == custody.PolicyViolation.exit_code and "rule" in err and "nothing was recorded" in err


def test_rotate_signer_through_the_timelock(treasury: dict, chain, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--home", treasury["home"], "--rpc", treasury["rpc"])
    old, new = anvil_address(2), anvil_address(4)
    _code, scheduled = run_script("rotate_signer", "hot-ops", *where, "--old", old, "--new", "keystore:officer-4",
                                  "--signer", "keystore:officer-1", "--json", capsys=capsys)  # fmt: skip
    assert scheduled["new"] == new and scheduled["delay"] == 3600 and scheduled["state"] == "scheduled"
    too_early = load_script("rotate_signer").main(["hot-ops", *where, "--complete", str(scheduled["proposal"])])
    assert too_early == 1 and re.search(r"becomes executable at .* \(in 3600 s\)", capsys.readouterr().err)
    chain.rpc("evm_increaseTime", [3601])
    chain.mine()
    _code, completed = run_script("rotate_signer", "hot-ops", *where, "--complete", str(scheduled["proposal"]),
                                  "--json", capsys=capsys)  # fmt: skip
    assert new in completed["owners"] and old not in completed["owners"] and completed["threshold"] == 1
    # the new owner signs a transfer out of the hot vault
    with custody.open(home=treasury["home"], rpc=treasury["rpc"]) as ws:
        p = ws.vault("hot-ops").propose_transfer("0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "1")
        p.sign("keystore:officer-4")
        assert p.execute().status == 1


def test_a_script_run_from_elsewhere_uses_the_public_api_of_this_tree(anvil, chain, tmp_path: Path) -> None:
    """Run as an operator would (another folder, no PYTHONPATH): `custody.open` is there even while the editable
    install still describes custody as a namespace package (it does until the next `pip install -e .`)."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "daily_report.py"), "--home", str(tmp_path / "ws"),
                           "--rpc", anvil.url, "--json"], capture_output=True, text=True, env=script_env(),
                          cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["vaults"] == [] and report["chain_id"] == anvil.chain_id and report["audit"]["verdict"] == "ok"
