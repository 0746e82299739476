"""Mutation testing of the modules whose bugs lose money or evidence; writes benchmarks/snapshots/mutation.json.

    scripts/mutate [--module NAME ...] [--sample N] [--write]

For each module, every mutation site of benchmarks.mutation.operators (or an evenly spaced, fixed sample
of ``N`` of them) becomes one pytest run of the module's targeted tests, with the module imported as the
mutant (benchmarks.mutation.plugin; nothing on disk changes). A failing run kills the mutant; a passing run
means it survived — unless benchmarks/mutation/triage.json lists it as equivalent, with the reason. The
contracts' figures come from the planted-bug catalogue (benchmarks/contract_plants.py,
benchmarks/snapshots/contract-plants.json): each plant is a contract mutant rebuilt and run against the
attack, rule and boundary tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.mutation.operators import sites  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "mutation.json"
TRIAGE = ROOT / "benchmarks" / "mutation" / "triage.json"
CONTRACT_PLANTS = ROOT / "benchmarks" / "snapshots" / "contract-plants.json"
TIMEOUT = 600


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # importable name of the mutated module
    tests: tuple[str, ...]  # the module's targeted tests (pytest arguments)


TARGETS = (  # cheapest first
    Target("guard compiler", "custody.policy.compiled", ("tests/test_guard_compiler.py", "tests/test_policy_templates.py",
                                                        "tests/test_guard_rules.py")),
    Target("SafeTx hashing", "custody.safe.safe_tx", ("tests/test_safe_tx_defaults.py", "tests/test_safe_tx.py")),
    Target("signature handling", "custody.safe.signatures", ("tests/test_malformed_signatures.py",
                                                             "tests/test_safe_tx.py")),
    Target("reconciliation engine", "custody.reconcile.engine", ("tests/test_reconcile_boundaries.py",
                                                                 "tests/test_reconcile.py")),
    Target("audit merkle", "custody.audit.merkle", ("tests/test_merkle_bounds.py", "tests/test_audit_merkle.py")),
    Target("exit operations", "custody.vault.exit", ("tests/test_boundary_properties.py", "tests/test_exit_module.py")),
    Target("audit integrity", "custody.audit.integrity", ("tests/test_integrity_attribution.py",
                                                          "tests/test_ledger_tamper_model.py",
                                                          "tests/test_audit_merkle.py")),
    Target("policy pre-flight", "custody.policy.preflight", (
        "tests/test_guard_rules.py", "tests/test_boundary_properties.py::test_window_edge_one_hour_short_would_be_a_breach",
        "tests/test_boundary_properties.py::test_after_an_idle_gap_of_25_hours_the_whole_limit_is_free_again")),
)  # fmt: skip


def module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def sample(count: int, size: int | None) -> list[int]:
    """A fixed, evenly spread sample of ``size`` of ``count`` site indexes (all of them without a size)."""
    if size is None or size >= count:
        return list(range(count))
    return sorted({(i * count) // size for i in range(size)})


def run_tests(target: Target, mutant: str | None) -> tuple[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k != "CUSTODY_MUTANT"}
    if mutant is not None:
        env["CUSTODY_MUTANT"] = mutant
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-p", "benchmarks.mutation.plugin", *target.tests]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "killed", "timeout"
    if done.returncode == 0:
        return "survived", None
    failed = next((line[7:].split(" - ")[0] for line in done.stdout.splitlines() if line.startswith("FAILED ")), None)
    failed = failed or next((line[6:] for line in done.stdout.splitlines() if line.startswith("ERROR ")), None)
    return "killed", failed or f"pytest exit {done.returncode}"


def find_site(module: str, code: str, description: str) -> int:
    """The index of the mutation site on the line containing ``code`` with ``description`` (exactly one)."""
    source = module_file(module).read_text()
    lines = source.splitlines()
    found = [s.index for s in sites(source) if s.description == description and code in lines[s.line - 1]]
    if len(found) != 1:
        raise LookupError(f"{len(found)} sites in {module} match {code!r} / {description!r}")
    return found[0]


def triaged() -> dict[tuple[str, str, str], str]:
    """(module, source line, description) -> why the mutant is equivalent."""
    if not TRIAGE.exists():
        return {}
    return {(t["module"], t["code"].strip(), t["description"]): t["reason"] for t in json.loads(TRIAGE.read_text())}


def mutate_target(target: Target, size: int | None) -> dict:
    source = module_file(target.module).read_text()
    lines = source.splitlines()
    found = sites(source)
    baseline, why = run_tests(target, None)
    if baseline != "survived":
        raise SystemExit(f"{target.name}: the targeted tests fail without any mutant ({why}); fix them first")
    equivalent = triaged()
    results = []
    for index in sample(len(found), size):
        site = found[index]
        code = lines[site.line - 1].strip() if site.line else ""
        reason = equivalent.get((target.module, code, site.description))
        started = time.monotonic()
        outcome, caught_by = run_tests(target, f"{target.module}:{index}")
        if outcome == "survived" and reason is not None:
            outcome = "equivalent"
        results.append({**site.as_dict(), "code": code, "outcome": outcome, "caught_by": caught_by,
                        "reason": reason if outcome == "equivalent" else None,
                        "seconds": round(time.monotonic() - started, 1)})  # fmt: skip
        print(json.dumps({"module": target.module, **results[-1]}), flush=True)
    counts = {k: sum(r["outcome"] == k for r in results) for k in ("killed", "survived", "equivalent")}
    scored = counts["killed"] + counts["survived"]
    return {
        "module": target.module, "tests": list(target.tests), "sites": len(found), "run": len(results), **counts,
        "killed_ratio": round(counts["killed"] / scored, 3) if scored else None, "mutants": results,
    }  # fmt: skip


def contracts_summary() -> dict:
    data = json.loads(CONTRACT_PLANTS.read_text())
    return {
        "source": "benchmarks/contract_plants.py (planted contract mutants, each rebuilt and run)",
        "mutants": data["plants"], "killed": data["caught"], "survived": data["survived"], "equivalent": 0,
        "killed_ratio": round(data["caught"] / data["plants"], 3) if data["plants"] else None,
    }  # fmt: skip


def _snapshot(modules: dict, sample: int | None, *, write: bool) -> dict:
    snapshot = {
        "tool": "benchmarks/mutation (AST mutator; operators in benchmarks/mutation/operators.py)",
        "sample_per_module": sample, "modules": modules, "contracts": contracts_summary(),
    }  # fmt: skip
    if write:
        previous = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
        if previous.get("sample_per_module") == sample:  # a partial run updates its modules only
            snapshot["modules"] = {**previous.get("modules", {}), **modules}
        SNAPSHOT.write_text(json.dumps(snapshot, indent=1) + "\n")
    return snapshot


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", nargs="*", help="target names or module names [all]")
    parser.add_argument("--sample", type=int, help="mutants per module (a fixed, evenly spread sample) [all]")
    parser.add_argument("--write", action="store_true", help=f"write {SNAPSHOT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if not args.module or t.name in args.module or t.module in args.module]
    if not chosen:
        raise SystemExit(f"no such module; one of: {', '.join(t.module for t in TARGETS)}")
    modules = {}
    snapshot: dict = {}
    for target in chosen:
        modules[target.name] = mutate_target(target, args.sample)
        m = modules[target.name]
        print(f"{target.name}: {m['killed']} killed, {m['survived']} survived, {m['equivalent']} equivalent "
              f"of {m['run']} (of {m['sites']} sites)", flush=True)  # fmt: skip
        snapshot = _snapshot(modules, args.sample, write=args.write)  # written after each module
    return snapshot


if __name__ == "__main__":
    main()
