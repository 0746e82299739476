"""Foundation benchmark: gas of vault creation and 2-of-3 ETH transfers (real receipts), and the
end-to-end rate of propose → sign ×2 → execute through custody vs a raw safe-eth-py loop doing the
same work, both measured in this run on one fresh Anvil.

    .venv/bin/python benchmarks/bench_foundation.py [--rounds N] [--write]

--write updates benchmarks/snapshots/foundation.json (committed; tests compare gas against it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import PRIME_BROKER, bench_session, foundation_gas, transfer_2of3, write_snapshot  # noqa: E402
from custody.session import Session  # noqa: E402
from custody.signers.local import anvil_private_key  # noqa: E402
from custody.vault import service  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "foundation.json"


def raw_loop(url: str, safe_address: str, rounds: int) -> float:
    """The same work with web3.py + safe-eth-py directly: build, sign twice, execute, wait."""
    from safe_eth.eth import EthereumClient
    from safe_eth.safe import Safe

    client = EthereumClient(url)
    safe = Safe(safe_address, client)
    keys = ["0x" + anvil_private_key(1).hex(), "0x" + anvil_private_key(2).hex()]
    sender = "0x" + anvil_private_key(0).hex()
    started = time.perf_counter()
    for _ in range(rounds):
        safe_tx = safe.build_multisig_tx(PRIME_BROKER, 10**15, b"")
        for key in keys:
            safe_tx.sign(key)
        tx_hash, _tx = safe_tx.execute(sender)
        receipt = client.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)
        if receipt["status"] != 1:
            raise AssertionError("raw loop transfer failed")
    return rounds / (time.perf_counter() - started)


def custody_loop(session: Session, vault: str, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        transfer_2of3(session, vault, amount="0.001")
    return rounds / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="update the committed snapshot")
    args = parser.parse_args()
    with bench_session() as (session, anvil, _tmp):
        gas = foundation_gas(session, ROOT / "policies" / "cold.yaml")
        bench, _ = service.create_vault(session, ROOT / "policies" / "cold.yaml", name="bench")
        session.send(to=bench.safe, value=100 * 10**18, what="fund")
        # warm-up both paths once, then alternate measurements to share machine noise
        custody_loop(session, bench.name, 2)
        raw_loop(anvil.url, bench.safe, 2)
        custody_rate = custody_loop(session, bench.name, args.rounds)
        raw_rate = raw_loop(anvil.url, bench.safe, args.rounds)
    result = {
        "gas": gas,
        "rates_per_second": {
            "custody_propose_sign2_execute": round(custody_rate, 1),
            "raw_safe_eth_py_loop": round(raw_rate, 1),
            "ratio_custody_over_raw": round(custody_rate / raw_rate, 3),
        },
        "rounds": args.rounds,
        "note": "rates are indicative (2-core machine); gas comes from receipts and is compared by tests",
    }
    write_snapshot(SNAPSHOT, result, write=args.write)


if __name__ == "__main__":
    main()
