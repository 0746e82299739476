"""Inspecting and repairing a workspace's records, never silently: every change is a ledger entry.

* :func:`status`: the chains the workspace is bound to (genesis, anchors), its vaults per chain, and whether a
  given endpoint is the recorded chain.
* :func:`forget_vault`: drop a vault record (and its proposals, signatures, confirmations, timelock and exit
  records) that describes no real vault, e.g. one written against a look-alike chain by an older build. The
  chain is not needed, so a poisoned workspace can be cleaned while the foreign chain is gone.
* :func:`repair`: after a deliberate chain reset, bind the chain id to the endpoint's genesis afresh and forget
  every record of that chain id the endpoint does not hold (vaults without code, deployments with other code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from custody.audit.entries import EntryKind
from custody.audit.record import ledger_for
from custody.binding import check_binding, rebind, record_binding, recorded_binding
from custody.chain.connection import Chain
from custody.contracts.deploy import codehash
from custody.exceptions import ForeignChain, UnknownVault, VaultError
from custody.store import (
    Store,
    deployments,
    exit_requests,
    exit_signatures,
    oob_challenges,
    oob_confirmations,
    proposals,
    signatures,
    timelock_ops,
    vaults,
)


@dataclass(frozen=True)
class Forgotten:
    name: str
    chain_id: int
    safe: str
    proposals: int
    entry_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.name,
            "chain_id": self.chain_id,
            "safe": self.safe,
            "proposals_forgotten": self.proposals,
            "ledger_seq": self.entry_seq,
        }


def status(store: Store, chain: Chain | None, *, where: str) -> dict[str, Any]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(vaults.c.chain_id, vaults.c.name, vaults.c.safe).order_by(vaults.c.id)).all()
        chain_ids = sorted({r.chain_id for r in rows} | {r[0] for r in conn.execute(sa.select(deployments.c.chain_id))})
    bound = []
    for chain_id in chain_ids:
        binding = recorded_binding(store, chain_id)
        bound.append(
            {
                "chain_id": chain_id,
                "genesis_hash": binding.genesis_hash if binding else None,
                "anchored_blocks": sorted(binding.anchors) if binding else [],
                "vaults": [{"name": r.name, "safe": r.safe} for r in rows if r.chain_id == chain_id],
            }
        )
    current = None
    if chain is not None:
        try:
            check_binding(chain, store, where=where)
            current = {"url": chain.url, "chain_id": chain.chain_id, "matches": True, "problem": None}
        except ForeignChain as exc:
            current = {"url": chain.url, "chain_id": chain.chain_id, "matches": False, "problem": exc.message}
    return {"home": where, "chains": bound, "current": current}


def _delete_vault_rows(conn: sa.Connection, vault_id: int) -> int:
    proposal_ids = [r[0] for r in conn.execute(sa.select(proposals.c.id).where(proposals.c.vault_id == vault_id))]
    request_ids = [
        r[0] for r in conn.execute(sa.select(exit_requests.c.id).where(exit_requests.c.vault_id == vault_id))
    ]
    if request_ids:
        conn.execute(exit_signatures.delete().where(exit_signatures.c.request_id.in_(request_ids)))
    conn.execute(exit_requests.delete().where(exit_requests.c.vault_id == vault_id))
    conn.execute(timelock_ops.delete().where(timelock_ops.c.vault_id == vault_id))
    if proposal_ids:
        for table in (signatures, oob_confirmations, oob_challenges):
            conn.execute(table.delete().where(table.c.proposal_id.in_(proposal_ids)))
        conn.execute(proposals.delete().where(proposals.c.id.in_(proposal_ids)))
    conn.execute(vaults.delete().where(vaults.c.id == vault_id))
    return len(proposal_ids)


def forget_vault(store: Store, name: str, *, chain_id: int | None, reason: str, actor: str = "operator") -> Forgotten:
    """Drop vault ``name`` from the workspace, recorded in the ledger with ``reason``."""
    if not reason.strip():
        raise VaultError("say why the vault record is forgotten (--reason TEXT): it goes into the audit ledger")
    with store.begin() as conn:
        query = sa.select(vaults).where(vaults.c.name == name)
        if chain_id is not None:
            query = query.where(vaults.c.chain_id == chain_id)
        rows = conn.execute(query).mappings().all()
        if not rows:
            known = sorted(r[0] for r in conn.execute(sa.select(vaults.c.name)))
            raise UnknownVault(f"no vault {name!r} in this workspace (known: {', '.join(known) or 'none'})")
        if len(rows) > 1:
            raise VaultError(
                f"vault {name!r} exists on chains {', '.join(str(r['chain_id']) for r in rows)}: pass --chain-id"
            )
        row = rows[0]
        count = _delete_vault_rows(conn, row["id"])
        entry = ledger_for(store).append(
            conn,
            EntryKind.VAULT_FORGOTTEN,
            actor=actor,
            vault=row["name"],
            chain_id=row["chain_id"],
            payload={
                "safe": row["safe"],
                "timelock": row["timelock"],
                "created_tx": row["created_tx"],
                "created_block": row["created_block"],
                "proposals_forgotten": count,
                "reason": reason.strip(),
            },
        )
    return Forgotten(row["name"], row["chain_id"], row["safe"], count, entry.seq)


def repair(store: Store, chain: Chain, *, reason: str, actor: str = "operator") -> dict[str, Any]:
    """Re-bind ``chain``'s id to this endpoint, forgetting the records of that chain id it does not hold."""
    if not reason.strip():
        raise VaultError("say why the workspace is repaired (--reason TEXT): it goes into the audit ledger")
    with store.connect() as conn:
        held = conn.execute(sa.select(vaults.c.name, vaults.c.safe).where(vaults.c.chain_id == chain.chain_id)).all()
        recorded = conn.execute(
            sa.select(deployments.c.name, deployments.c.address, deployments.c.codehash).where(
                deployments.c.chain_id == chain.chain_id
            )
        ).all()
    lost_vaults = [name for name, safe in held if codehash(chain, safe) is None]
    lost_deployments = [name for name, address, expected in recorded if codehash(chain, address) != expected]
    forgotten = [
        forget_vault(store, name, chain_id=chain.chain_id, reason=f"workspace repair: {reason}", actor=actor)
        for name in lost_vaults
    ]
    with store.begin() as conn:
        if lost_deployments:
            conn.execute(
                deployments.delete().where(
                    deployments.c.chain_id == chain.chain_id, deployments.c.name.in_(lost_deployments)
                )
            )
        rebind(conn, chain)
        entry = ledger_for(store).append(
            conn,
            EntryKind.WORKSPACE_REPAIRED,
            actor=actor,
            vault=None,
            chain_id=chain.chain_id,
            payload={
                "url": chain.url,
                "vaults_forgotten": lost_vaults,
                "deployments_forgotten": lost_deployments,
                "reason": reason.strip(),
            },
        )
    record_binding(chain, store)
    return {
        "chain_id": chain.chain_id,
        "url": chain.url,
        "vaults_forgotten": [f.as_dict() for f in forgotten],
        "deployments_forgotten": lost_deployments,
        "ledger_seq": entry.seq,
    }
