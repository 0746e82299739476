"""The contract plant catalogue (benchmarks/contract_plants.py) stays meaningful: every plant still applies to
the contracts as they are, and its last recorded run caught each one with a test that still exists.

The run itself (a rebuild and the attack tests per plant, about an hour) is a benchmark, not part of the suite."""

import ast
import json

from benchmarks import contract_plants
from tests.conftest import REPO


def test_every_plant_still_applies_to_exactly_one_place():
    stale = [
        f"{index}: {guarantee}"
        for index, (file, old, _new, guarantee) in enumerate(contract_plants.PLANTS)
        if (REPO / "contracts" / file).read_text().count(old) != 1
    ]
    assert not stale, "plants whose text is no longer in the contracts once:\n" + "\n".join(stale)


def test_the_recorded_run_covers_the_catalogue_and_caught_every_plant():
    snapshot = json.loads(contract_plants.SNAPSHOT.read_text())
    recorded = [(r["plant"], r["guarantee"]) for r in snapshot["results"]]
    assert recorded == [(index, plant[3]) for index, plant in enumerate(contract_plants.PLANTS)]
    assert [r["plant"] for r in snapshot["results"] if r["outcome"] != "caught"] == []
    assert snapshot["caught"] == snapshot["plants"] == len(contract_plants.PLANTS)


def test_each_catching_test_still_exists():
    missing = []
    for result in json.loads(contract_plants.SNAPSHOT.read_text())["results"]:
        path, _, name = result["caught_by"].partition("::")
        function = name.split("[")[0]
        tree = ast.parse((REPO / path).read_text())
        if function not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(result["caught_by"])
    assert not missing, f"recorded catching tests that no longer exist: {missing}"
