"""Collateral tokens a workspace knows: deploy one with its issuer vault, register an existing one, list them,
and issue bars (allocate a bar list as one batch and mint against it through the issuer vault).

:func:`require_collateral_token` checks an address speaks the CollateralToken interface before anything reads
its events: reconciling a plain ERC-20 used to run for minutes, then fail with "reverted without a reason".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_utils import keccak

from custody.contracts.deploy import codehash, contract
from custody.exceptions import ReconcileError
from custody.reconcile import token as reconcile_token
from custody.reconcile.barlist import BarList, format_units
from custody.reconcile.ingest import load_bar_list
from custody.reconcile.issuance import IssuedBatch, allocate_and_mint
from custody.session import Session
from custody.signers.base import Signer
from custody.store import deployments, record_deployment
from custody.types import parse_address
from custody.vault.service import list_vaults

PREFIX = "CollateralToken:"


@dataclass(frozen=True)
class CollateralInfo:
    address: str
    name: str
    symbol: str
    version: str
    supply: int
    allocated: int
    issuer_vault: str | None  # the workspace vault whose Safe holds ISSUER_ROLE, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "symbol": self.symbol,
            "version": self.version,
            "supply": format_units(self.supply),
            "allocated_fine_oz": format_units(self.allocated),
            "issuer_vault": self.issuer_vault,
        }


def require_collateral_token(session: Session, token: str) -> CollateralInfo:
    """The token's facts, or :class:`ReconcileError` naming why ``token`` is not a CollateralToken."""
    address = parse_address(token, what="token")
    if codehash(session.chain, address) is None:
        raise ReconcileError(f"{address} has no code on chain {session.chain_id}: it is not a CollateralToken")
    c = contract(session.chain, "CollateralToken", address)
    try:
        probe = session.chain.call(c.functions.barId("custody", "probe").call)
        issuer_role = session.chain.call(c.functions.ISSUER_ROLE().call)
        info = CollateralInfo(
            address=address,
            name=session.chain.call(c.functions.name().call),
            symbol=session.chain.call(c.functions.symbol().call),
            version=session.chain.call(c.functions.VERSION().call),
            supply=session.chain.call(c.functions.totalSupply().call),
            allocated=session.chain.call(c.functions.allocatedFineWeight().call),
            issuer_vault=None,
        )
    except ReconcileError:
        raise
    except Exception as exc:  # web3 decoding/revert errors: the contract lacks the interface
        if type(exc).__name__ == "RpcUnreachable":
            raise
        raise ReconcileError(
            f"{address} is not a CollateralToken: it does not answer barId/allocatedFineWeight/VERSION "
            "(a plain ERC-20 cannot be reconciled against a bar list); nothing was read"
        ) from exc
    if bytes(probe) != keccak(text="custody/probe") or bytes(issuer_role) != keccak(text="ISSUER_ROLE"):
        raise ReconcileError(
            f"{address} answers the CollateralToken functions with other values: not a CollateralToken"
        )
    issuer = next(
        (v.name for v in list_vaults(session) if session.chain.call(c.functions.hasRole(issuer_role, v.safe).call)),
        None,
    )
    return CollateralInfo(**{**info.__dict__, "issuer_vault": issuer})


def register(session: Session, token: str) -> CollateralInfo:
    """Record an existing CollateralToken in the workspace (checked first)."""
    info = require_collateral_token(session, token)
    with session.store.begin() as conn:
        record_deployment(
            conn,
            session.chain_id,
            (PREFIX + info.symbol)[:64],
            address=info.address,
            codehash=codehash(session.chain, info.address) or "",
        )
    return info


def deploy(
    session: Session, *, symbol: str, name: str, vault: str, template: str | Path, workdir: Path
) -> tuple[str, CollateralInfo]:
    """A new issuer vault ``vault`` (from ``template``, plus the issuer calls) and its CollateralToken."""
    record, deployed = reconcile_token.create_issuer_vault(
        session, template, workdir, name=vault, token_name=name, symbol=symbol
    )
    return record.name, require_collateral_token(session, deployed.address)


def registered(session: Session) -> list[CollateralInfo]:
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(deployments.c.address)
            .where(deployments.c.chain_id == session.chain_id, deployments.c.name.startswith(PREFIX))
            .order_by(deployments.c.name)
        ).all()
    return [require_collateral_token(session, address) for (address,) in rows]


def issue_bars(
    session: Session, token: str, bars_path: str | Path, *, to: str, signers: Sequence[Signer]
) -> tuple[CollateralInfo, IssuedBatch, BarList]:
    """Allocate every bar of ``bars_path`` as one batch and mint their fine weight to ``to``, through the token's
    issuer vault (proposed, signed by ``signers``, executed)."""
    info = require_collateral_token(session, token)
    if info.issuer_vault is None:
        raise ReconcileError(f"no vault of this workspace holds the issuer role of {info.symbol} ({info.address})")
    bars = load_bar_list(bars_path)
    rows = [bars.bar(i).as_dict() for i in range(len(bars))]
    batch = allocate_and_mint(
        session, info.issuer_vault, info.address, rows, to=parse_address(to, what="holder"), signers=signers
    )
    return require_collateral_token(session, info.address), batch, bars


def resolve_token(session: Session, ref: str) -> str:
    """A token address from an address or the symbol of a CollateralToken recorded in this workspace."""
    if ref.startswith("0x"):
        return parse_address(ref, what="token")
    with session.store.connect() as conn:
        address = conn.execute(
            sa.select(deployments.c.address).where(
                deployments.c.chain_id == session.chain_id, deployments.c.name == (PREFIX + ref)[:64]
            )
        ).scalar()
    if address is None:
        known = [i.symbol for i in registered(session)]
        raise ReconcileError(
            f"no CollateralToken {ref!r} is recorded in this workspace (known: {', '.join(known) or 'none'})",
            hint="deploy one with `custody collateral deploy` or record it with `custody collateral register ADDRESS`",
        )
    return str(address)
