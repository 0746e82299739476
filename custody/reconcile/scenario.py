"""Generated bar lists and issuer flows, for the pilot, the tests and the benchmark.

Bars are valid Good Delivery bars by construction: a fine weight in 350–430 oz, a fineness of at
least 995.0, and a gross weight whose gross × fineness rounds down to the fine weight (LBMA practice).
Deterministic for a seed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from custody.chain.transactions import Receipt
from custody.reconcile import token as T
from custody.reconcile.barlist import COLUMNS, MILLI_OZ_UNITS, bar_id, format_milli, refiners
from custody.session import Session
from custody.signers.base import Signer

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


def row_bar_id(row: dict[str, str]) -> bytes:
    return bar_id(refiners()[row["refiner"]].code, row["serial"])


def row_units(row: dict[str, str]) -> int:
    whole, _, frac = row["fine_weight_oz"].partition(".")
    return (int(whole) * 1000 + int(frac.ljust(3, "0"))) * MILLI_OZ_UNITS


@dataclass(frozen=True)
class IssuedBatch:
    batch: bytes
    bars: int
    fine_weight: int  # base units
    allocate_tx: str
    mint_tx: str | None
    block: int


def allocate(
    session: Session, vault: str, token: str, rows: Sequence[dict[str, str]], signers: Sequence[Signer]
) -> tuple[bytes, Receipt]:
    ids, weights = [row_bar_id(r) for r in rows], [row_units(r) for r in rows]
    receipt = T.issue(
        session, vault, token, T.allocate_data(ids, weights), signers=signers, what=f"allocating {len(rows)} bars"
    )
    return T.batch_hash(ids, weights), receipt


def allocate_and_mint(
    session: Session, vault: str, token: str, rows: Sequence[dict[str, str]], *, to: str, signers: Sequence[Signer]
) -> IssuedBatch:
    """Allocate ``rows`` as one batch, then mint their total fine weight to ``to`` citing the batch."""
    batch, allocated = allocate(session, vault, token, rows, signers)
    total = sum(row_units(r) for r in rows)
    minted = T.issue(
        session,
        vault,
        token,
        T.mint_data(to, total, batch),
        signers=signers,
        what=f"minting {total} base units against batch 0x{batch.hex()[:12]}…",
    )
    return IssuedBatch(batch, len(rows), total, allocated.tx_hash, minted.tx_hash, minted.block_number)
