"""Generated bar lists, for the pilot and the tests (issuing them: custody/reconcile/issuance.py).

Bars are valid Good Delivery bars by construction: a fine weight in 350–430 oz, a fineness of at
least 995.0, and a gross weight whose gross × fineness rounds down to the fine weight (LBMA practice).
Deterministic for a seed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path

from custody.reconcile.barlist import COLUMNS, format_milli

VAULTS = (("Brink's", "London"), ("Loomis", "Zurich"), ("Malca-Amit", "Singapore"))
FINENESS = ("999.9", "999.5", "999.0", "995.0")
REFINERS = ("Valcambi SA", "PAMP SA", "Argor-Heraeus SA", "Metalor Technologies SA", "The Perth Mint")


def generate_rows(count: int, *, seed: int = 7, prefix: str = "GB", start: int = 0) -> list[dict[str, str]]:
    """``count`` valid bars as bar-list rows (all values as text, columns in :data:`COLUMNS` order)."""
    rng = random.Random(seed)
    rows = []
    for n in range(start, start + count):
        fineness = rng.choice(FINENESS)
        tenths = int(fineness.replace(".", ""))
        fine = rng.randint(360_000, 420_000)
        gross = -(-fine * 10_000 // tenths)  # ceil: gross × fineness rounds down to the fine weight
        custodian, location = rng.choice(VAULTS)
        rows.append(
            {
                "serial": f"{prefix}{n:07d}",
                "refiner": rng.choice(REFINERS),
                "year": str(rng.randint(2012, 2024)),
                "gross_weight_oz": format_milli(gross),
                "fineness": fineness,
                "fine_weight_oz": format_milli(fine),
                "vault_location": location,
                "custodian": custodian,
            }
        )
    return rows


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bars": list(rows)}, indent=1), encoding="utf-8")
    return path
