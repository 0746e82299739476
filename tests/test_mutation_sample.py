"""The CI sample of mutation testing: a few fixed mutants of the money/evidence modules must be killed by
their targeted tests (the full run is `scripts/mutate --write`, a benchmark). Each mutant runs in its own
pytest process with the module imported as the mutant (benchmarks.mutation.plugin)."""

from __future__ import annotations

import ast

import pytest

from benchmarks.mutation import run
from benchmarks.mutation.operators import mutant, sites

SAMPLE = [
    # (module, line fragment, mutation, targeted test)
    ("custody.audit.integrity", 'if data["seq"] != seq:', "NotEq -> Eq",
     "tests/test_ledger_tamper_model.py::test_swapped_rows_are_named_at_both_rows"),
    ("custody.reconcile.engine", "equal = chain_milli == listed_milli[js]", "Eq -> NotEq",
     "tests/test_reconcile_boundaries.py::test_one_base_unit_of_weight_difference_is_a_weight_mismatch"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "code", "description", "test"), SAMPLE, ids=[s[0] for s in SAMPLE])
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
