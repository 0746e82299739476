"""The pilot's tokenized-collateral section (custody/pilots/main.py calls it).

An issuer micro-vault (from the hot template: the issuer's calls go through the vault's Safe like any
other proposal, so the vault's policy will govern them once the on-chain guard lands) deploys
CollateralToken, allocates two batches of generated Good Delivery bars and mints against each. Then:

* the first list is reconciled at the first batch's block (clean: zero findings);
* the second list is reconciled against the first (clean: its change equals the net minting);
* a copy of the second list with seeded discrepancies (one allocated bar missing, one bar never
  allocated, one fine weight altered) is reconciled and must report exactly those — plus the
  backing shortfall the missing bar causes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody.harness import scenario
from custody.reconcile import issuance, token
from custody.reconcile.barlist import format_milli
from custody.reconcile.service import RunResult, run_reconcile
from custody.session import Session
from custody.signers.local import anvil_signer

HOLDER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # the prime broker / first token holder
ISSUER_VAULT = "collateral-issuer"
SEEDED_KINDS = {"allocated_not_in_list": 1, "listed_not_allocated": 1, "weight_mismatch": 1, "backing_shortfall": 1}

Step = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


def _run_summary(run: RunResult) -> dict[str, Any]:
    r = run.reconciliation
    return {
        "bars_file": run.bars.source,
        "bars_sha256": run.bars.sha256,
        "bars": len(run.bars),
        "at_block": run.at_block,
        "supply": str(r.totals.supply),
        "verified_backing": str(r.totals.verified_backing),
        "findings": len(r.findings),
        "finding_counts": r.counts(),
        "backing_short": r.backing_short,
        "exit_code": run.exit_code,
        "html": run.html,
        "run_id": run.run_id,
    }


def seed_discrepancies(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The list with its last bar missing, one never-allocated bar added and one fine weight altered."""
    seeded = [dict(r) for r in rows[:-1]]
    extra = scenario.generate_rows(1, seed=99, prefix="XX")[0]
    altered = seeded[0]
    fine = int(altered["fine_weight_oz"].replace(".", "")) - 1_000  # 1 oz less, still a valid bar
    tenths = int(altered["fineness"].replace(".", ""))
    altered["fine_weight_oz"] = format_milli(fine)
    altered["gross_weight_oz"] = format_milli(-(-fine * 10_000 // tenths))
    return [*seeded, extra]


def collateral_section(step: Step, session: Session, issuer_template: Path, folder: Path) -> dict[str, Any]:
    signers = [anvil_signer(1)]  # the hot template is 1-of-2
    issuer: dict[str, Any] = {}

    def setup() -> dict[str, Any]:
        record, deployed = token.create_issuer_vault(
            session, issuer_template, folder, name=ISSUER_VAULT, token_name="Custody Gold", symbol="cGOLD"
        )
        facts = {"tx_hash": record.created_tx}
        issuer.update(vault=record.name, safe=record.safe, token=deployed.address)
        return {
            "issuer_vault": record.name,
            "safe": record.safe,
            "timelock": record.timelock,
            "vault_tx": facts["tx_hash"],
            "token": deployed.address,
            "token_tx": deployed.tx_hash,
            "template": record.policy_path,
        }

    info = step("collateral: issuer vault + CollateralToken (cGOLD)", setup)
    first_rows, second_rows = scenario.generate_rows(16, seed=1), scenario.generate_rows(8, seed=2, start=16)
    batches = []

    def issue(rows: list[dict[str, str]]) -> dict[str, Any]:
        b = issuance.allocate_and_mint(session, issuer["vault"], issuer["token"], rows, to=HOLDER, signers=signers)
        batches.append(b)
        return {
            "batch": "0x" + b.batch.hex(),
            "bars": b.bars,
            "fine_weight": str(b.fine_weight),
            "allocate_tx": b.allocate_tx,
            "mint_tx": b.mint_tx,
            "block": b.block,
        }

    first = step("collateral: allocate 16 bars and mint against them", lambda: issue(first_rows))
    list1 = scenario.write_csv(folder / "bars-1.csv", first_rows)
    clean1 = step(
        "collateral: reconcile the first bar list (clean)",
        lambda: _run_summary(
            run_reconcile(session, issuer["token"], list1, at_block=first["block"], html_path=folder / "clean-1.html")
        ),
    )
    second = step("collateral: allocate 8 more bars and mint against them", lambda: issue(second_rows))
    list2 = scenario.write_csv(folder / "bars-2.csv", first_rows + second_rows)
    clean2 = step(
        "collateral: reconcile the second list against the first (clean)",
        lambda: _run_summary(
            run_reconcile(session, issuer["token"], list2, previous_path=list1, html_path=folder / "clean-2.html")
        ),
    )
    seeded_list = scenario.write_csv(folder / "bars-seeded.csv", seed_discrepancies(first_rows + second_rows))
    seeded = step(
        "collateral: reconcile a list with seeded discrepancies",
        lambda: _run_summary(run_reconcile(session, issuer["token"], seeded_list, html_path=folder / "seeded.html")),
    )
    return {
        **info,
        "holder": HOLDER,
        "batches": [first, second],
        "clean": clean1,
        "clean_with_previous": clean2,
        "seeded": seeded,
        "seeded_expected": SEEDED_KINDS,
        "seeded_as_expected": seeded["finding_counts"] == SEEDED_KINDS,
        "bar_lists": [str(list1), str(list2)],
    }
