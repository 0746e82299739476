"""Mutation testing of the modules whose bugs lose money or evidence; writes benchmarks/snapshots/mutation.json.

    scripts/mutate [--module NAME ...] [--sample N] [--site INDEX ...] [--write] | [--retriage]

For each module, every mutation site of benchmarks.mutation.operators (or a fixed, seeded sample of ``N``
of them, one from each of ``N`` equal stretches of the module) becomes one pytest run of the module's
targeted tests, with the module imported as the mutant (benchmarks.mutation.plugin; nothing on disk
changes). Each run stops at its first failure (``-x``), and the tests that killed earlier mutants of the
module (in this run, or recorded in the snapshot) run first, the most recent catcher at the front. A
failing run kills the mutant; a passing run means it survived — unless benchmarks/mutation/triage.json
lists it as equivalent, with the reason. ``--write`` replaces the chosen modules' entries in the snapshot
and keeps the others, each with the sample it was measured with. ``--site`` runs named mutants only; with
``--write`` they replace the same mutants in the module's recorded sample (after a test was added for them). ``--retriage`` re-applies the triage list to the snapshot's survivors without running anything.
The contracts' figures come from the planted-bug catalogue (benchmarks/contract_plants.py,
benchmarks/snapshots/contract-plants.json): each plant is a contract mutant rebuilt and run against the
attack, rule and boundary tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    Target("reconciliation engine", "custody.reconcile.engine", ("tests/test_reconcile_join.py",
                                                                 "tests/test_reconcile_boundaries.py",
                                                                 "tests/test_reconcile.py")),
    Target("audit merkle", "custody.audit.merkle", ("tests/test_merkle_bounds.py", "tests/test_audit_merkle.py")),
    Target("exit operations", "custody.vault.exit", (
        "tests/test_boundary_properties.py::test_exit_finalizes_at_ready_at_and_not_one_second_earlier",
        "tests/test_boundary_properties.py::test_exit_module_exposes_no_finalize_before_ready_for_any_signer",
        "tests/test_boundary_properties.py::test_exit_operations_on_a_vault_without_an_exit_module_name_the_cause",
        "tests/test_exit_module.py",
        "tests/test_audit_flows.py::test_emergency_exit_steps_are_recorded_with_their_transactions",
        "tests/test_rpc_faults.py::test_exit_initiation_outage_resumes_with_the_journaled_transaction[drop]",
        "tests/test_rpc_faults.py::test_exit_finalization_receipt_outage_then_resume_pays_the_custodian_once[drop]")),
    Target("audit integrity", "custody.audit.integrity", ("tests/test_integrity_attribution.py",
                                                          "tests/test_ledger_tamper_model.py",
                                                          "tests/test_audit_merkle.py")),
    Target("policy pre-flight", "custody.policy.preflight", (
        "tests/test_preflight_classification.py", "tests/test_guard_rules.py",
        "tests/test_boundary_properties.py::test_rolling_window_at_its_edges_matches_an_independent_oracle",
        "tests/test_boundary_properties.py::test_window_edge_one_hour_short_would_be_a_breach",
        "tests/test_boundary_properties.py::test_after_an_idle_gap_of_25_hours_the_whole_limit_is_free_again")),
    Target("module-call decoding", "custody.policy.calldata", ("tests/test_preflight_classification.py",)),
)  # fmt: skip


def module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def sample(count: int, size: int | None, seed: str) -> list[int]:
    """``size`` of ``count`` site indexes (all of them without a size): one from each of ``size`` equal
    stretches of the module, chosen by a generator seeded with ``seed`` — the same sample on every run."""
    if size is None or size >= count:
        return list(range(count))
    rng = random.Random(f"{seed}:{size}")
    return [rng.randrange((i * count) // size, ((i + 1) * count) // size) for i in range(size)]


def _test_id(caught_by: str | None) -> str | None:
    """The pytest node id in a ``caught_by`` (``tests/x.py::test_y[p] - message``); None for a timeout."""
    if not caught_by or "::" not in caught_by:
        return None
    return caught_by.split(" - ")[0].strip()


def run_tests(
    target: Target, mutant: str | None, first: list[str] | None = None, timeout: float = TIMEOUT
) -> tuple[str, str | None]:
    """Run the target's tests (``first`` — pytest node ids — ahead of the rest) against ``mutant``; a run
    longer than ``timeout`` seconds (a mutant that loops forever) kills it."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUSTODY_MUTANT", "CUSTODY_MUTANT_FIRST")}
    if mutant is not None:
        env["CUSTODY_MUTANT"] = mutant
    if first:
        env["CUSTODY_MUTANT_FIRST"] = "\n".join(first)
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-p", "benchmarks.mutation.plugin", *target.tests]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
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


def previous_catchers(target: Target) -> list[str]:
    """The tests that killed this module's mutants in the snapshot, the most frequent first."""
    if not SNAPSHOT.exists():
        return []
    entry = json.loads(SNAPSHOT.read_text()).get("modules", {}).get(target.name, {})
    ids = [_test_id(m.get("caught_by")) for m in entry.get("mutants", [])]
    counts: dict[str, int] = {}
    for test_id in ids:
        if test_id:
            counts[test_id] = counts.get(test_id, 0) + 1
    return sorted(counts, key=lambda t: -counts[t])


def mutate_target(target: Target, size: int | None, only: list[int] | None = None) -> dict:
    source = module_file(target.module).read_text()
    lines = source.splitlines()
    found = sites(source)
    started = time.monotonic()
    baseline, why = run_tests(target, None)
    timeout = min(TIMEOUT, max(120.0, 4 * (time.monotonic() - started)))  # a mutant never needs 4x the baseline
    if baseline != "survived":
        raise SystemExit(f"{target.name}: the targeted tests fail without any mutant ({why}); fix them first")
    equivalent = triaged()
    catchers = previous_catchers(target)
    results = []
    for index in only if only is not None else sample(len(found), size, target.module):
        site = found[index]
        code = lines[site.line - 1].strip() if site.line else ""
        reason = equivalent.get((target.module, code, site.description))
        started = time.monotonic()
        outcome, caught_by = run_tests(target, f"{target.module}:{index}", catchers, timeout)
        if outcome == "survived" and reason is not None:
            outcome = "equivalent"
        test_id = _test_id(caught_by)
        if test_id:  # the latest catcher runs first for the next mutant
            catchers = [test_id, *(t for t in catchers if t != test_id)]
        results.append({**site.as_dict(), "code": code, "outcome": outcome, "caught_by": caught_by,
                        "reason": reason if outcome == "equivalent" else None,
                        "seconds": round(time.monotonic() - started, 1)})  # fmt: skip
        print(json.dumps({"module": target.module, **results[-1]}), flush=True)
    return _count({
        "module": target.module, "tests": list(target.tests), "sites": len(found),
        "sample": "all" if size is None or size >= len(found) else f"seeded, one of each of {size} stretches",
        "run": len(results), "mutants": results,
    })  # fmt: skip


def _count(entry: dict) -> dict:
    counts = {k: sum(m["outcome"] == k for m in entry["mutants"]) for k in ("killed", "survived", "equivalent")}
    scored = counts["killed"] + counts["survived"]
    return {**entry, **counts, "killed_ratio": round(counts["killed"] / scored, 3) if scored else None}


def retriage() -> dict:
    """Apply benchmarks/mutation/triage.json to the snapshot's survivors (no mutant is re-run): a survivor
    triaged since its run becomes equivalent, with the reason; an entry no longer triaged survives again."""
    snapshot = json.loads(SNAPSHOT.read_text())
    equivalent = triaged()
    for entry in snapshot["modules"].values():
        for m in entry["mutants"]:
            if m["outcome"] in ("survived", "equivalent"):
                reason = equivalent.get((entry["module"], m["code"], m["description"]))
                m["outcome"], m["reason"] = ("equivalent", reason) if reason else ("survived", None)
    return _snapshot({name: _count(entry) for name, entry in snapshot["modules"].items()}, write=True)


def remeasured(target: Target, fresh: dict) -> dict:
    """The snapshot's entry for ``target`` with the mutants of ``fresh`` (a ``--site`` run) replaced; only
    when the module still has the same sites, each re-run mutant is the one the entry recorded, and the tests
    include the entry's (more tests only kill more: the others' outcomes stand, survivors conservatively)."""
    entry = json.loads(SNAPSHOT.read_text())["modules"].get(target.name) if SNAPSHOT.exists() else None
    if entry is None or entry["sites"] != fresh["sites"] or not set(entry["tests"]) <= set(fresh["tests"]):
        raise SystemExit(f"{target.name}: the snapshot's entry was measured on other sites or tests; re-run the sample")
    by_index = {m["index"]: m for m in fresh["mutants"]}
    old = {m["index"]: m for m in entry["mutants"]}
    for index, m in by_index.items():
        if index not in old or (old[index]["code"], old[index]["description"]) != (m["code"], m["description"]):
            raise SystemExit(f"{target.name}: mutant {index} is not one the snapshot's sample recorded")
    return _count(
        {**entry, "tests": fresh["tests"], "mutants": [by_index.get(m["index"], m) for m in entry["mutants"]]}
    )


def contracts_summary() -> dict:
    data = json.loads(CONTRACT_PLANTS.read_text())
    return {
        "source": "benchmarks/contract_plants.py (planted contract mutants, each rebuilt and run)",
        "mutants": data["plants"], "killed": data["caught"], "survived": data["survived"], "equivalent": 0,
        "killed_ratio": round(data["caught"] / data["plants"], 3) if data["plants"] else None,
    }  # fmt: skip


def _snapshot(modules: dict, *, write: bool) -> dict:
    """The snapshot with ``modules`` replacing their earlier entries (the other modules are kept)."""
    previous = json.loads(SNAPSHOT.read_text()) if write and SNAPSHOT.exists() else {}
    merged = {**previous.get("modules", {}), **modules}
    merged = {t.name: merged[t.name] for t in TARGETS if t.name in merged}
    snapshot = {
        "tool": "benchmarks/mutation (AST mutator; operators in benchmarks/mutation/operators.py)",
        "run_per_module": {name: m["run"] for name, m in merged.items()},
        "modules": merged, "contracts": contracts_summary(),
    }  # fmt: skip
    if write:
        SNAPSHOT.write_text(json.dumps(snapshot, indent=1) + "\n")
    return snapshot


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", nargs="*", help="target names or module names [all]")
    parser.add_argument("--sample", type=int, help="mutants per module (a fixed, evenly spread sample) [all]")
    parser.add_argument("--site", type=int, nargs="+", help="run these site indexes only (one module; not written)")
    parser.add_argument("--write", action="store_true", help=f"write {SNAPSHOT.relative_to(ROOT)}")
    parser.add_argument("--retriage", action="store_true", help="re-apply triage.json to the snapshot (runs nothing)")
    args = parser.parse_args(argv)
    if args.retriage:
        return retriage()
    chosen = [t for t in TARGETS if not args.module or t.name in args.module or t.module in args.module]
    if not chosen:
        raise SystemExit(f"no such module; one of: {', '.join(t.module for t in TARGETS)}")
    if args.site is not None and len(chosen) != 1:
        raise SystemExit("--site names mutants of one --module")
    modules = {}
    snapshot: dict = {}
    for target in chosen:
        modules[target.name] = mutate_target(target, args.sample, args.site)
        if args.site is not None and args.write:  # re-measured mutants replace theirs in the module's entry
            modules[target.name] = remeasured(target, modules[target.name])
        m = modules[target.name]
        print(f"{target.name}: {m['killed']} killed, {m['survived']} survived, {m['equivalent']} equivalent "
              f"of {m['run']} (of {m['sites']} sites)", flush=True)  # fmt: skip
        # written after each module, that module only (a concurrent run's newer entries for others are kept)
        snapshot = _snapshot({target.name: modules[target.name]}, write=args.write)
    return snapshot


if __name__ == "__main__":
    main()
