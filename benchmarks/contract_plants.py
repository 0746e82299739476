"""Plant each bug a contract guarantee prevents, one at a time, and show that the suite catches it.

    .venv/bin/python benchmarks/contract_plants.py [--only N ...] [--write]

Each plant is a small, realistic change to one check in `contracts/` (a removed check, an off-by-one at
a boundary). The contracts are copied to a temporary folder, the plant applied there, compiled into a
temporary artifacts folder, and the attack tests run against those artifacts ($CUSTODY_ARTIFACTS_DIR);
nothing in the checkout changes. A plant the tests do not catch is a survivor: the guarantee it stands
for is not proven. `--write` records the outcome in benchmarks/snapshots/contract-plants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custody.contracts import build  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "contract-plants.json"
TESTS = [
    "tests/test_attacks.py", "tests/test_messages.py", "tests/test_guard_rules.py", "tests/test_spend_window_sums.py",
    "tests/test_policy_state_machine.py",
    "tests/test_exit_module.py", "tests/test_boundary_properties.py", "tests/test_timelock_clones.py",
    "tests/test_guard_clones.py", "tests/test_spend_window_priming.py",
]  # fmt: skip

_TIMELOCK_STATE_ANCHOR = "    /// @inheritdoc TimelockController\n    function getMinDelay()"


def _timelock_state_plant(expression: str) -> str:
    return (
        "    function getOperationState(bytes32 id) public view override returns (OperationState) {\n"
        "        OperationState state = super.getOperationState(id);\n"
        f"        return {expression};\n"
        "    }\n\n" + _TIMELOCK_STATE_ANCHOR
    )


# (file under contracts/, text to replace, replacement, the guarantee it breaks)
PLANTS: list[tuple[str, str, str, str]] = [
    ("CustodyFallbackHandler.sol", "return abi.decode(answer, (uint256)) == 1 ? ERC1271_MAGIC : ERC1271_INVALID;",
     "return ERC1271_MAGIC;", "ERC-1271 answers only for guard-approved digests"),
    ("guard/GuardTimelockRules.sol", "if (registered != _safe() || guard.code.length == 0) revert", "if (false) revert",
     "a replacement guard comes from the registry"),
    ("guard/GuardTimelockRules.sol", "if (next.previousGuard != address(this)) revert", "if (false) revert",
     "a replacement guard carries the rolling window over"),
    ("guard/GuardTimelockRules.sol", "if (next.timelock != _timelock()) revert", "if (false) revert",
     "a replacement guard is bound to the same timelock"),
    ("guard/GuardTimelockRules.sol", "if (next.fallbackHandler != _fallbackHandler()) revert", "if (false) revert",
     "a replacement guard is bound to the same fallback handler"),
    ("guard/GuardTimelockRules.sol",
     "if (to == _timelock() || to == address(this) || to == _exitModule() || to == _fallbackHandler()) return 0;", "",
     "the vault's components are never reached through the Safe by the timelock"),
    ("guard/GuardTimelockRules.sol", "return _isTransfer(innerValue, inner) ? KIND_UNLISTED_TRANSFER : 0;",
     "return KIND_UNLISTED_TRANSFER;", "no arbitrary call in the vault's name through the timelock"),
    ("guard/GuardTimelockRules.sol", "if (operation != 0) return 0;", "if (operation != 0) return KIND_UNLISTED_TRANSFER;",
     "no DELEGATECALL through the timelock"),
    ("guard/GuardTimelockRules.sol",
     "if (module != _exitModule() || module == address(0)) revert CustodyGuardModuleForbidden(module);", "",
     "no foreign module"),
    ("guard/GuardTimelockRules.sol", "if (module == _timelock()) revert CustodyGuardModuleForbidden(module);", "",
     "the timelock is never disabled"),
    ("guard/GuardTimelockRules.sol", "if (handler != _fallbackHandler() && handler != address(0)) revert", "if (false) revert",
     "only the custody fallback handler"),
    ("guard/GuardTimelockRules.sol", "if (!_cleanAddresses(inner)) return 0;", "", "dirty address bits refused"),
    ("guard/GuardTimelockRules.sol", "if (delay < required) revert CustodyGuardZeroGuardDelay(delay, required);",
     "if (delay + 1 < required) revert CustodyGuardZeroGuardDelay(delay, required);", "removing the guard needs 2x the delay (boundary)"),
    ("guard/GuardTimelockRules.sol", "if (newDelay < MIN_TIMELOCK_DELAY || newDelay > MAX_TIMELOCK_DELAY) {",
     "if (newDelay + 1 < MIN_TIMELOCK_DELAY || newDelay > MAX_TIMELOCK_DELAY) {", "timelock delay floor (guard, boundary)"),
    ("guard/GuardTimelockRules.sol", "if (_paused) revert CustodyGuardPaused();\n        _checkTime();\n        (address to",
     "_checkTime();\n        (address to", "timelocked transfers wait while paused"),
    ("guard/GuardTimelockRules.sol", "if (_paused) revert CustodyGuardPaused();\n        _checkTime();\n        (address to",
     "if (_paused) revert CustodyGuardPaused();\n        (address to", "timelocked transfers wait for freeze windows to end"),
    ("guard/GuardTimelockRules.sol", "emit CustodyGuardScheduledSpend(token, amount, _spendScheduled(i, token, amount));",
     "emit CustodyGuardScheduledSpend(token, amount, 0);", "timelocked transfers use up the rolling window"),
    ("guard/GuardEntryPoints.sol", "if (kind & TRANSFER_KINDS != 0) _checkScheduledTransfer(data);", "",
     "execution-time checks of timelocked transfers"),
    ("guard/GuardEntryPoints.sol", "        _checkMessage(domainSeparator);\n        digest", "        digest",
     "message approvals are checked where they are recorded"),
    ("guard/GuardCallRules.sol", "                _checkMessage(bytes32(data[4:36]));\n", "",
     "owner-signed message approvals only for listed domains"),
    ("VaultTimelock.sol", "if (guard != address(0)) ICustodyGuard(guard).checkTimelockCall(target, value, data);", "",
     "the timelock asks the guard before each call it executes"),
    ("VaultTimelock.sol", "    function grantRole(bytes32, address) public pure override {\n        revert VaultTimelockRolesFixed();\n    }\n",
     "", "timelock roles are fixed"),
    ("VaultTimelock.sol", "if (delay < MIN_TIMELOCK_DELAY || delay > MAX_TIMELOCK_DELAY) {",
     "if (delay + 1 < MIN_TIMELOCK_DELAY || delay > MAX_TIMELOCK_DELAY) {", "timelock delay floor (timelock, boundary)"),
    ("VaultSetup.sol", "if (modules.length == 0 || IVaultCreation(factory).timelockInCreation() != modules[0]) {",
     "if (modules.length == 0) {", "vault creation cannot be front-run"),
    ("ExitModule.sol", "if (cfg.escrowDelay < MIN_ESCROW_DELAY || cfg.escrowDelay > MAX_ESCROW_DELAY) {",
     "if (cfg.escrowDelay > MAX_ESCROW_DELAY) {", "exit escrow floor"),
    ("ExitModule.sol", "|| custodian == guard || ISafe(safe).isModuleEnabled(custodian)", "",
     "a custodian is never the guard or a module"),
    ("guard/GuardSpendWindow.sol", "return nowHour < lastHour ? lastHour : nowHour;", "return nowHour;",
     "a backwards clock neither panics nor forgets a spend"),
    ("guard/GuardPolicy.sol",
     'if (_isPolicyAsset(cfg, verifier)) revert CustodyGuardInvalidConfig("message domain of a policy asset");', "",
     "a policy asset is never a message domain"),
    ("guard/GuardPolicy.sol", "if (cfg.timelockKinds & REQUIRED_KINDS != REQUIRED_KINDS) {", "if (false) {",
     "every guard lets the owners schedule every configuration change"),
    # issue 16: the plants that once went unnoticed (the window one hour short, on both read paths)
    ("guard/GuardSpendWindow.sol", "uint256 skip = RING - gap;", "uint256 skip = RING - 1 - gap;",
     "a spend counts for 25 hour buckets (not 24)"),
    ("guard/GuardSpendWindow.sol", "if (gap >= BUCKETS) return flags", "if (gap >= BUCKETS - 1) return flags",
     "after a 24 h idle gap the last hour still counts"),
    ("ExitModule.sol", "if (block.timestamp < readyAt) revert", "if (block.timestamp + 60 < readyAt) revert",
     "an exit is final only once the escrow delay has passed"),
    ("guard/GuardSpendWindow.sol", "((live << gap) | (1 << (gap - 1))) & LIVE_MASK", "(live << gap) & LIVE_MASK",
     "after a long gap the window still counts the last hour's spends"),
    ("guard/GuardSpendWindow.sol", "return _bucketSum(i, hour - 1 - skip - _lowestBit(left));",
     "return _bucketSum(i, hour - skip - _lowestBit(left));", "after a long gap the window keeps its oldest hour (boundary)"),
    ("guard/GuardSpendWindow.sol", "((live << gap) | (1 << (gap - 1))) & LIVE_MASK", "((live << gap) | (1 << gap)) & LIVE_MASK",
     "a new hour expires exactly the hours that left the window (boundary)"),
    # issue 16: a timelock operation is ready at exactly readyAt (OpenZeppelin's `timestamp <= block.timestamp`),
    # planted as an override of the state the timelock checks before every call: one second late, one second early
    ("VaultTimelock.sol", _TIMELOCK_STATE_ANCHOR, _timelock_state_plant(
        "state == OperationState.Ready && getTimestamp(id) == block.timestamp ? OperationState.Waiting : state"),
     "a timelock operation is executable from exactly readyAt (not one second later)"),
    ("VaultTimelock.sol", _TIMELOCK_STATE_ANCHOR, _timelock_state_plant(
        "state == OperationState.Waiting && getTimestamp(id) == block.timestamp + 1 ? OperationState.Ready : state"),
     "a timelock operation is not executable before readyAt (not one second earlier)"),
    ("VaultTimelock.sol", "if (msg.sender != DEPLOYER || address(this) == IMPLEMENTATION || vault != address(0)",
     "if (msg.sender != DEPLOYER || vault != address(0)", "the shared timelock implementation can never be bound"),
    # issue 15: a timelock's roles are computed from its bound Safe instead of stored
    ("VaultTimelock.sol", "if (role == PROPOSER_ROLE || role == CANCELLER_ROLE) return account == safe;",
     "if (role == PROPOSER_ROLE || role == CANCELLER_ROLE) return account != address(0);",
     "only the vault's Safe proposes and cancels on its timelock"),
    ("VaultTimelock.sol", "if (role == EXECUTOR_ROLE) return account == address(0);\n        return false;",
     "if (role == EXECUTOR_ROLE) return account == address(0);\n        return account == safe;",
     "nobody holds a vault timelock's admin role (roles are fixed)"),
    ("VaultTimelock.sol", "if (safe == address(0)) return false;\n        if (role == PROPOSER_ROLE", "if (role == PROPOSER_ROLE",
     "an unbound timelock (the implementation) grants no role"),
    # issue 15: clone guards (CustodyGuardClone, its arguments in GuardArgs / GuardPolicyArgs)
    ("CustodyGuardClone.sol",
     "if (!_isClone()) revert CustodyGuardNotAClone();\n        if (msg.sender != _guardDeployer())",
     "if (msg.sender != _guardDeployer())", "the shared guard implementation can never be initialised"),
    ("CustodyGuardClone.sol", "_validate(_safe(), _timelock(), _exitModule(), _fallbackHandler(), cfg);", "",
     "a clone guard's policy is checked like a dedicated guard's"),
    ("guard/GuardArgs.sol", "        checkGuardCapacity(cfg);\n", "",
     "a clone guard's one-byte table counts never wrap"),
    ("guard/GuardPolicyArgs.sol", "return GuardArgs.TABLES + GuardArgs.ASSET_SIZE * _assetCount();",
     "return GuardArgs.TABLES + GuardArgs.ASSET_SIZE * _assetCount() + 1;",
     "a clone guard reads its destination table where it is (off by one)"),
    # issue 15: the 24-bucket ring, where the finished hour reuses the bucket of the hour that leaves
    ("guard/GuardSpendWindow.sol",
     "        uint256 before = _beforeWindow(i, (word >> 96) & MASK96, live, hour, gap);\n        _writeBucket(i, hour, spent);",
     "        _writeBucket(i, hour, spent);\n        uint256 before = _beforeWindow(i, (word >> 96) & MASK96, live, hour, gap);",
     "a new hour drops the hour that left the window before its ring bucket is reused"),
    ("guard/GuardSpendWindow.sol", "uint256 live = (word >> LIVE) & LIVE_MASK;", "uint256 live = word >> LIVE;",
     "a ring bucket counts only while its hour is in the window (the live map is the ring's 24 hours only)"),
    # issue 15: priming the ring (a dedicated guard at creation, a clone by anyone later)
    ("guard/GuardSpendWindow.sol",
     "if (slot & HALF == 0) primed |= PRIMED_BUCKET;\n                if (slot >> 128 == 0) primed |= PRIMED_BUCKET << 128;",
     "primed = PRIMED_BUCKET | (PRIMED_BUCKET << 128);", "priming never overwrites a recorded spend"),
    ("CustodyGuard.sol", "        _primeRing(cfg.assets.length);\n", "", "a dedicated guard primes its ring at creation"),
    ("guard/GuardSpendWindow.sol", "index := byte(shr(27, and(mul(and(x, sub(0, x)), 0x077CB531), 0xFFFFFFFF)), DE_BRUIJN)",
     "index := byte(shr(27, and(mul(x, 0x077CB531), 0xFFFFFFFF)), DE_BRUIJN)",
     "the sum read is the latest hour that left the window (the map's lowest bit)"),
    ("CustodyGuardClone.sol", "if (!_isClone()) revert CustodyGuardNotAClone();\n        slots = _primeRing",
     "slots = _primeRing", "the shared guard implementation is never primed"),
    # issue 15: the ring read and written in assembly (no bounds checks) on the hot paths
    ("guard/GuardSpendWindow.sol", "slot := add(add(_ring.slot, mul(i, perAsset)), shr(1, b))",
     "slot := add(add(_ring.slot, mul(i, sub(perAsset, 1))), shr(1, b))", "each asset's ring buckets are its own"),
    ("guard/GuardSpendWindow.sol", "let shift := mul(and(b, 1), 128)", "let shift := 0",
     "a finished hour is written into its own half of the ring slot"),
    ("guard/GuardSpendWindow.sol", "sum := and(shr(mul(and(b, 1), 128), sload(slot)), MASK96)",
     "sum := and(sload(slot), MASK96)", "an expiring hour is read from its own half of the ring slot"),
    ("guard/GuardPolicyArgs.sol", "if (n > MAX_ASSETS) n = MAX_ASSETS;", "",
     "the shared implementation's spend windows read as unused, whatever its code holds"),
    # issue 15: the window as running sums, searched through the live-hours map
    ("guard/GuardSpendWindow.sol", "if (left == 0) return before;", "if (left == 0) return 0;",
     "what left the window before its live hours stays counted as gone"),
    ("guard/GuardSpendWindow.sol", "| MARKER | SEEDED | ((block.timestamp / 3600) << 192) |",
     "| MARKER | SEEDED | (1 << LIVE) | ((block.timestamp / 3600) << 192) |", "a seeded window starts with no live hour"),
]  # fmt: skip


def run_plant(index: int, tests: list[str] | None = None) -> dict:
    file, old, new, guarantee = PLANTS[index]
    with tempfile.TemporaryDirectory(prefix="plant-") as tmp:
        contracts = Path(tmp) / "contracts"
        shutil.copytree(ROOT / "contracts", contracts)
        path = contracts / file
        text = path.read_text()
        if text.count(old) != 1:
            return {"plant": index, "guarantee": guarantee, "outcome": "stale plant (text not found once)"}
        path.write_text(text.replace(old, new))
        artifacts = Path(tmp) / "artifacts"
        build.write(build.compile_all(contracts), artifacts)
        env = {**os.environ, "CUSTODY_ARTIFACTS_DIR": str(artifacts)}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", *(tests or TESTS)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
    failed = next((line[7:].split(" - ")[0] for line in done.stdout.splitlines() if line.startswith("FAILED ")), None)
    outcome = "caught" if done.returncode != 0 else "survived"
    return {"plant": index, "file": file, "guarantee": guarantee, "outcome": outcome, "caught_by": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", help="plant indexes to run [all]")
    parser.add_argument("--tests", nargs="*", help="test files to run [the attack, rule and boundary tests]")
    parser.add_argument("--write", action="store_true", help="write benchmarks/snapshots/contract-plants.json")
    args = parser.parse_args()
    results = []
    for index in args.only if args.only else range(len(PLANTS)):
        results.append(run_plant(index, args.tests))
        print(json.dumps(results[-1]), flush=True)
    if args.only and SNAPSHOT.exists():  # a partial run updates its plants in the committed snapshot
        merged = {r["plant"]: r for r in json.loads(SNAPSHOT.read_text())["results"]}
        merged.update({r["plant"]: r for r in results})
        results = [merged[k] for k in sorted(merged)]
    caught = sum(r["outcome"] == "caught" for r in results)
    summary = {"plants": len(results), "caught": caught, "survived": len(results) - caught, "results": results}
    if args.write:
        SNAPSHOT.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {SNAPSHOT}")
    print(f"{caught} of {len(results)} plants caught")


if __name__ == "__main__":
    main()
