"""The CI sample of mutation testing: a few fixed mutants of the money/evidence modules must be killed by
their targeted tests (the full run is `scripts/mutate --write`, a benchmark). Each mutant runs in its own
pytest process with the module imported as the mutant (benchmarks.mutation.plugin)."""

from __future__ import annotations

import ast
import json

import pytest

from benchmarks.mutation import run
from benchmarks.mutation.operators import mutant, sites

SAMPLE = [
    # (module, line fragment, mutation, targeted test)
    ("custody.audit.integrity", 'if data["seq"] != seq:', "NotEq -> Eq",
     "tests/test_ledger_tamper_model.py::test_swapped_rows_are_named_at_both_rows"),
    ("custody.reconcile.engine", "equal = chain_milli == listed_milli[js]", "Eq -> NotEq",
     "tests/test_reconcile_boundaries.py::test_one_base_unit_of_weight_difference_is_a_weight_mismatch"),
    # survivors of an earlier sample, killed by tests written for them (chain-free, so cheap here)
    ("custody.audit.integrity", "result.problems.append(Problem(below[-1] if below else 0", "0 -> 1",
     "tests/test_integrity_attribution.py::test_a_bad_head_is_blamed_from_the_largest_verified_head_below_it_or_from_entry_0"),
    ("custody.reconcile.engine", 'raise ReconcileError("comparing with a previous bar list needs the block', "raise -> pass",
     "tests/test_reconcile_boundaries.py::test_a_previous_list_without_the_block_it_was_valid_at_is_refused_before_any_work"),
    ("custody.reconcile.engine", "if len(same) and (events[order[same]] != events[order[same + 1]]).any():", "And -> Or",
     "tests/test_reconcile_join.py::test_distinct_prefixes_are_the_join_keys_even_when_a_bar_has_several_events"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "code", "description", "test"), SAMPLE, ids=[f"{s[0]}:{s[2]}" for s in SAMPLE])
def test_sampled_mutant_is_killed_by_its_targeted_test(module, code, description, test):
    index = run.find_site(module, code, description)
    outcome, caught_by = run.run_tests(run.Target(module, module, (test,)), f"{module}:{index}")
    assert (outcome, caught_by is not None) == ("killed", True), (outcome, caught_by)


def test_the_mutator_changes_exactly_the_named_site():
    source = run.module_file("custody.audit.integrity").read_text()
    index = run.find_site("custody.audit.integrity", 'if data["seq"] != seq:', "NotEq -> Eq")
    tree, site = mutant(source, index)
    assert site == sites(source)[index] and site.operator == "negate_compare"
    assert ast.unparse(tree).count("data['seq'] == seq") == 1


def test_every_triaged_mutant_still_names_a_mutation_site():
    """A triage entry whose line or mutation no longer exists would silently stop applying."""
    for entry in json.loads(run.TRIAGE.read_text()):
        source = run.module_file(entry["module"]).read_text()
        lines = source.splitlines()
        matches = [s for s in sites(source) if s.description == entry["description"]
                   and lines[s.line - 1].strip() == entry["code"].strip()]  # fmt: skip
        assert matches, entry
        assert entry["reason"].startswith("equivalent"), entry


def test_the_snapshot_meets_issue_16_for_every_module_and_the_contracts():
    """benchmarks/snapshots/mutation.json (written by the runner): at least 90 % of the non-equivalent mutants
    killed in every module and in the contracts, and each module sampled with at least 20 mutants (or all)."""
    snapshot = json.loads(run.SNAPSHOT.read_text())
    assert set(snapshot["modules"]) == {t.name for t in run.TARGETS}
    for name, module in snapshot["modules"].items():
        assert module["run"] == module["killed"] + module["survived"] + module["equivalent"] == len(module["mutants"])
        assert module["run"] >= min(20, module["sites"]), (name, module["run"])
        assert module["killed_ratio"] >= 0.9, (name, module["killed"], module["survived"])
        assert snapshot["run_per_module"][name] == module["run"]
    contracts = snapshot["contracts"]
    assert contracts["killed_ratio"] >= 0.9 and contracts["killed"] + contracts["survived"] == contracts["mutants"]
