"""`ape run ape_custody` (scripts/ape_custody.py): a custody vault driven from Ape on the test Anvil, offline.

Ape's foundry provider attaches to the already running Anvil (``foundry.host``); Ape's test accounts 1 and 2
(the same mnemonic as Anvil's) are the cold template's owners and sign through the ``ape:`` signer scheme."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from custody.signers.local import anvil_address
from tests.conftest import POLICIES, REPO

VENV_BIN = Path(sys.executable).parent
PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def ape_project(tmp_path: Path, rpc: str) -> Path:
    project = tmp_path / "ape-project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "ape_custody.py", project / "scripts" / "ape_custody.py")
    (project / "ape-config.yaml").write_text(
        "name: custody-ape\ndefault_ecosystem: ethereum\nethereum:\n  local:\n    default_provider: foundry\n"
        f"foundry:\n  host: {rpc}\n"
    )
    return project


def test_ape_run_creates_funds_and_spends_a_vault_with_ape_accounts(anvil, chain, tmp_path: Path) -> None:
    project = ape_project(tmp_path, anvil.url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")},
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),  # custody from this tree
        "APE_DATA_FOLDER": str(tmp_path / "ape-data"),
    }
    before = chain.w3.eth.get_balance(PRIME_BROKER)
    argv = [str(VENV_BIN / "ape"), "run", "ape_custody", "--network", "ethereum:local:foundry",
            "--home", str(tmp_path / "ws"), "--template", str(POLICIES / "cold.yaml"), "--json"]  # fmt: skip
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["chain_id"] == anvil.chain_id and result["audit"] == "ok"
    assert set(result["signers"]) == {anvil_address(1), anvil_address(2)}  # the Ape accounts signed
    assert result["balance"] == "7.5"
    assert chain.w3.eth.get_balance(PRIME_BROKER) - before == 25 * 10**17
    assert chain.w3.eth.get_transaction_receipt(result["tx_hash"])["status"] == 1
    assert chain.w3.eth.get_transaction(result["funding_tx"])["from"] == anvil_address(0)  # an Ape transfer
    assert chain.w3.eth.get_balance(result["safe"]) == 75 * 10**17
