"""The workspace database: one schema, SQLAlchemy Core, SQLite by default or PostgreSQL by URL.

The chain stays the source of truth for vault state; these tables record what we deployed and what is
in flight. The engine, connections and schema creation live in :mod:`custody.store.core`, which defines
no table; each domain's tables live in a module of their own:

* :mod:`custody.store.contracts` — the deployment registry (``deployments``)
* :mod:`custody.store.vault` — vaults, proposals, signatures, timelock operations, exit requests, the
  journal of transactions in flight
* :mod:`custody.store.oob` — out-of-band confirmation (second channel)
* :mod:`custody.store.policy` — template texts
* :mod:`custody.store.attest` — EAS badges and anchored batches
* :mod:`custody.store.logs` — log-indexing cursors and block hashes
* :mod:`custody.store.binding` — the workspace's chain identity

Importing this package imports every one of them, so :data:`metadata` holds the whole schema before any
:class:`Store` is opened. Tables the domains create themselves on first use keep their own metadata in
their domain (the audit ledger: ``custody.audit.schema``; reconciliation: ``custody.reconcile.index``).
tests/test_store_tables.py holds the map of which module owns which table.
"""

from __future__ import annotations

from custody.store.attest import attest_batches, badges
from custody.store.binding import chain_anchors, chain_bindings
from custody.store.contracts import deployments, record_deployment
from custody.store.core import Store, StoreSlot, inserted_id, metadata, redact_url, utcnow
from custody.store.logs import log_blocks, log_cursors
from custody.store.oob import oob_challenges, oob_confirmations, oob_confirmer_keys, oob_confirmers
from custody.store.policy import remember_template, templates
from custody.store.vault import (
    exit_requests,
    exit_signatures,
    proposals,
    signatures,
    timelock_ops,
    tx_journal,
    vaults,
)

__all__ = [
    "Store",
    "StoreSlot",
    "attest_batches",
    "badges",
    "chain_anchors",
    "chain_bindings",
    "deployments",
    "exit_requests",
    "exit_signatures",
    "inserted_id",
    "log_blocks",
    "log_cursors",
    "metadata",
    "oob_challenges",
    "oob_confirmations",
    "oob_confirmer_keys",
    "oob_confirmers",
    "proposals",
    "record_deployment",
    "redact_url",
    "remember_template",
    "signatures",
    "templates",
    "timelock_ops",
    "tx_journal",
    "utcnow",
    "vaults",
]
