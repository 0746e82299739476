"""The signer benchmark runs (separate process: it creates its own SoftHSM2 token) and reports both paths."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_signers_smoke():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_signers.py"), "--rounds", "3", "--per-round", "20"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rates = json.loads(result.stdout)["rates_per_second"]
    assert rates["raw_pkcs11_sign"] > 0 and rates["signer_protocol_sign_safe_tx"] > 0
    assert 0 < rates["ratio_signing_only_over_raw"] <= 1.5
    # hashing is extra work on the protocol side only: with it, the protocol can only be slower
    assert 0 < rates["ratio_protocol_with_hashing_over_raw"] <= 1.5


def test_committed_snapshot_meets_the_target():
    snapshot = json.loads((ROOT / "benchmarks" / "snapshots" / "signers.json").read_text())
    assert snapshot["rates_per_second"]["ratio_signing_only_over_raw"] >= snapshot["target_ratio"] == 0.8
    assert "ratio_protocol_with_hashing_over_raw" in snapshot["rates_per_second"]
