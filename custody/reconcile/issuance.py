"""Issuing bars: allocate bar-list rows as one batch on a CollateralToken and mint their fine weight against
it, through the token's issuer vault (``custody collateral issue``, the pilot and the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from custody.chain.transactions import Receipt
from custody.reconcile import token as reconcile_token
from custody.reconcile.barlist import MILLI_OZ_UNITS, bar_id, refiners
from custody.session import Session
from custody.signers.base import Signer


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
    receipt = reconcile_token.issue(
        session,
        vault,
        token,
        reconcile_token.allocate_data(ids, weights),
        signers=signers,
        what=f"allocating {len(rows)} bars",
    )
    return reconcile_token.batch_hash(ids, weights), receipt


def allocate_and_mint(
    session: Session, vault: str, token: str, rows: Sequence[dict[str, str]], *, to: str, signers: Sequence[Signer]
) -> IssuedBatch:
    """Allocate ``rows`` as one batch, then mint their total fine weight to ``to`` citing the batch."""
    batch, allocated = allocate(session, vault, token, rows, signers)
    total = sum(row_units(r) for r in rows)
    minted = reconcile_token.issue(
        session,
        vault,
        token,
        reconcile_token.mint_data(to, total, batch),
        signers=signers,
        what=f"minting {total} base units against batch 0x{batch.hex()[:12]}…",
    )
    return IssuedBatch(batch, len(rows), total, allocated.tx_hash, minted.tx_hash, minted.block_number)
