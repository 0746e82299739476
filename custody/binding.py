"""Which chain a workspace means: a chain id is not an identity (every Anvil is 31337), its genesis block hash
and the hashes of the blocks that hold what the workspace recorded are.

At first contact with a chain id the workspace records the genesis hash. After each command the hashes of the
blocks that hold recorded deployments and vaults are added as anchors. Before any command writes anything,
:func:`check_binding` compares the endpoint with both; a look-alike chain (another Anvil, same id) or a reset
chain (same genesis, blocks gone or different) raises :class:`ForeignChain` and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from custody.chain.connection import Chain
from custody.contracts.deploy import codehash
from custody.exceptions import ChainError, ForeignChain
from custody.store import Store, chain_anchors, chain_bindings, deployments, utcnow, vaults


@dataclass(frozen=True)
class Binding:
    chain_id: int
    genesis_hash: str
    anchors: dict[int, str]  # block number -> block hash


def block_hash(chain: Chain, number: int) -> str | None:
    """The hash of block ``number`` on ``chain``, or None when the chain has no such block."""
    block = chain.rpc("eth_getBlockByNumber", [hex(number), False])
    return None if block is None else str(block["hash"]).lower()


def recorded_binding(store: Store, chain_id: int) -> Binding | None:
    with store.connect() as conn:
        row = conn.execute(sa.select(chain_bindings).where(chain_bindings.c.chain_id == chain_id)).first()
        if row is None:
            return None
        anchors = conn.execute(
            sa.select(chain_anchors.c.block_number, chain_anchors.c.block_hash).where(
                chain_anchors.c.chain_id == chain_id
            )
        ).all()
    return Binding(chain_id, row.genesis_hash, {int(n): h for n, h in anchors})


def _legacy_records_match(chain: Chain, store: Store) -> bool:
    """A workspace from before bindings: its records may be trusted at first contact only if every recorded
    deployment has its recorded code on ``chain`` and every recorded Safe has code."""
    with store.connect() as conn:
        recorded = conn.execute(
            sa.select(deployments.c.address, deployments.c.codehash).where(deployments.c.chain_id == chain.chain_id)
        ).all()
        safes = conn.execute(sa.select(vaults.c.safe).where(vaults.c.chain_id == chain.chain_id)).all()
    if any(codehash(chain, address) != expected for address, expected in recorded):
        return False
    return all(codehash(chain, safe) is not None for (safe,) in safes)


def check_binding(chain: Chain, store: Store, *, where: str) -> Binding | None:
    """Raise :class:`ForeignChain` unless ``chain`` is the chain this workspace recorded for its chain id.

    Reads only. Returns the recorded binding (None at first contact: :func:`record_binding` writes it)."""
    binding = recorded_binding(store, chain.chain_id)
    if binding is None:
        if not _legacy_records_match(chain, store):
            raise ForeignChain(
                f"{chain.url} serves chain id {chain.chain_id} but lacks the contracts workspace {where} recorded "
                f"for it: it is a different or reset chain, so nothing was written",
                hint="point --rpc at this workspace's own chain, or run `custody workspace repair`",
                chain_id=chain.chain_id,
                url=chain.url,
            )
        return None
    genesis = block_hash(chain, 0)
    if genesis != binding.genesis_hash:
        raise ForeignChain(
            f"{chain.url} serves chain id {chain.chain_id} but genesis block {_short(genesis)}, not the "
            f"{_short(binding.genesis_hash)} workspace {where} recorded: it is a different or reset chain, so "
            f"nothing was written",
            hint="point --rpc at this workspace's own chain, or use another --home for that chain",
            chain_id=chain.chain_id,
            url=chain.url,
            expected_genesis=binding.genesis_hash,
            actual_genesis=genesis,
        )
    for number in sorted(binding.anchors):
        actual = block_hash(chain, number)
        if actual != binding.anchors[number]:
            found = "has no such block" if actual is None else f"has {_short(actual)} there"
            raise ForeignChain(
                f"{chain.url} has the genesis of chain {chain.chain_id} but block {number}, which holds records of "
                f"workspace {where} ({_short(binding.anchors[number])}), {found}: the chain was reset or "
                f"rewritten, so nothing was written",
                hint="restore the chain's saved state, or run `custody workspace repair` to forget the lost records",
                chain_id=chain.chain_id,
                url=chain.url,
                block=number,
                expected_hash=binding.anchors[number],
                actual_hash=actual,
            )
    return binding


def record_binding(chain: Chain, store: Store) -> None:
    """Record the genesis hash (first contact) and anchor every block holding a recorded deployment or vault."""
    binding = recorded_binding(store, chain.chain_id)
    known = binding.anchors if binding else {}
    with store.connect() as conn:
        numbers = {
            int(n)
            for table, column in ((deployments, deployments.c.block_number), (vaults, vaults.c.created_block))
            for (n,) in conn.execute(sa.select(column).where(table.c.chain_id == chain.chain_id)).all()
            if n is not None
        }
    fresh = {n: block_hash(chain, n) for n in sorted(numbers - set(known))}
    genesis = None if binding else block_hash(chain, 0)
    if genesis is None and binding is None:
        raise ChainError(f"{chain.url} has no genesis block")
    with store.begin() as conn:
        if binding is None:
            conn.execute(
                chain_bindings.insert().values(chain_id=chain.chain_id, genesis_hash=genesis, recorded_at=utcnow())
            )
        for number, hash_ in fresh.items():
            if hash_ is not None:
                conn.execute(
                    chain_anchors.insert().values(chain_id=chain.chain_id, block_number=number, block_hash=hash_)
                )


def forget_anchors(conn: sa.Connection, chain_id: int, *, keep: set[int]) -> int:
    """Drop anchors not in ``keep`` (after records were forgotten); returns how many were dropped."""
    query = chain_anchors.delete().where(chain_anchors.c.chain_id == chain_id)
    if keep:
        query = query.where(chain_anchors.c.block_number.not_in(keep))
    return conn.execute(query).rowcount


def rebind(conn: sa.Connection, chain: Chain) -> None:
    """Bind chain id to the endpoint's genesis afresh (``workspace repair``); anchors are recomputed after."""
    conn.execute(chain_anchors.delete().where(chain_anchors.c.chain_id == chain.chain_id))
    conn.execute(chain_bindings.delete().where(chain_bindings.c.chain_id == chain.chain_id))
    conn.execute(
        chain_bindings.insert().values(chain_id=chain.chain_id, genesis_hash=block_hash(chain, 0), recorded_at=utcnow())
    )


def _short(block_hash_: str | None) -> str:
    return "(none)" if block_hash_ is None else block_hash_[:10] + "…"
