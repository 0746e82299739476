"""Shared setup for the collateral tests: a CollateralToken on the session chain whose issuer is a plain
dev account (fast, direct calls), generated bars, and issuer actions. Tests that exercise the issuer
vault path use custody.reconcile.token.issue instead."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from custody.chain.transactions import Receipt, send_transaction
from custody.contracts.errors import decode_revert
from custody.harness import scenario
from custody.reconcile import issuance
from custody.reconcile import token as reconcile_token
from custody.session import Session
from custody.signers.local import anvil_signer

ISSUER = anvil_signer(3)
ADMIN = anvil_signer(4)
HOLDER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


@dataclass
class Issuer:
    """Direct issuer calls from a dev account holding ISSUER_ROLE."""

    session: Session
    token: str
    txs: list[Receipt] = field(default_factory=list)

    def call(self, data: bytes, what: str = "issuer call", signer=ISSUER) -> Receipt:
        receipt = send_transaction(
            self.session.chain, signer, to=self.token, data=data, what=what, decoder=decode_revert
        )
        self.txs.append(receipt)
        return receipt

    def allocate(self, rows) -> tuple[bytes, Receipt]:
        ids, weights = [issuance.row_bar_id(r) for r in rows], [issuance.row_units(r) for r in rows]
        return reconcile_token.batch_hash(ids, weights), self.call(
            reconcile_token.allocate_data(ids, weights), "allocate"
        )

    def deallocate(self, rows) -> tuple[bytes, Receipt]:
        ids, weights = [issuance.row_bar_id(r) for r in rows], [issuance.row_units(r) for r in rows]
        return reconcile_token.batch_hash(ids, weights), self.call(
            reconcile_token.deallocate_data(ids, weights), "deallocate"
        )

    def mint(self, amount: int, provenance: bytes, to: str | None = None) -> Receipt:
        return self.call(reconcile_token.mint_data(to or ISSUER.address, amount, provenance), "mint")

    def burn(self, amount: int, provenance: bytes) -> Receipt:
        return self.call(reconcile_token.burn_data(amount, provenance), "burn")

    def transfer(self, to: str, amount: int) -> Receipt:
        from eth_abi import encode
        from eth_utils import function_signature_to_4byte_selector

        data = function_signature_to_4byte_selector("transfer(address,uint256)") + encode(
            ["address", "uint256"], [to, amount]
        )
        return self.call(data, "transfer")

    def head(self) -> int:
        return int(self.session.chain.rpc("eth_blockNumber"), 16)


def deploy(session: Session, symbol: str = "tGOLD") -> Issuer:
    deployed = reconcile_token.deploy_token(
        session, reconcile_token.TokenSpec("Test Gold", symbol, ADMIN.address, ISSUER.address)
    )
    return Issuer(session, deployed.address)


def units(rows) -> int:
    return sum(issuance.row_units(r) for r in rows)


def write(tmp: Path, name: str, rows) -> Path:
    return scenario.write_csv(tmp / name, rows)


def altered_weight(row: dict[str, str], delta_milli: int) -> dict[str, str]:
    """The same bar with its fine weight changed by ``delta_milli`` (gross adjusted so the row stays valid)."""
    from custody.reconcile.barlist import format_milli

    fine = int(row["fine_weight_oz"].replace(".", "")) + delta_milli
    tenths = int(row["fineness"].replace(".", ""))
    return {**row, "fine_weight_oz": format_milli(fine), "gross_weight_oz": format_milli(-(-fine * 10_000 // tenths))}


def env_without_custody() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
