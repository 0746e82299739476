"""In-process domain events: a lower layer states what happened, higher layers react to it.

The vault domain publishes ``ApprovalSigned``, ``ConfirmationRecorded`` and ``ProposalExecuted``; the
contracts layer publishes ``InfrastructureDeployed``. Attestation and audit subscribe to them. Publishers
never import their subscribers, which is what keeps the dependencies pointing down the layers
(tests/test_layers.py).

All subscriptions live in one composition root, ``custody._wiring``. It is loaded by name on the first
``publish`` (the bus sits in the lowest layer and cannot import it), so every caller — the public API, the
CLI, the drills and code that calls a domain module directly — gets the same reactions.

Handlers run synchronously, in subscription order, in the publisher's thread; an exception propagates to
the publisher unchanged (a recording point that runs inside the publisher's database transaction must be
able to roll it back). Handlers that are best effort catch their own errors.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

COMPOSITION_ROOT = "custody._wiring"  # the one module that calls subscribe(); it defines install()

E = TypeVar("E")

_handlers: dict[type, list[Callable[[Any], None]]] = {}
_lock = threading.Lock()
_wired = False


def subscribe(event_type: type[E], handler: Callable[[E], None]) -> None:
    """Call ``handler(event)`` for every published event of exactly ``event_type``."""
    _handlers.setdefault(event_type, []).append(handler)


def _ensure_wired() -> None:
    global _wired
    if _wired:
        return
    with _lock:
        if not _wired:
            importlib.import_module(COMPOSITION_ROOT).install()
            _wired = True


def publish(event: object) -> None:
    """Run every handler subscribed to the event's type, in order; their exceptions propagate."""
    _ensure_wired()
    for handler in list(_handlers.get(type(event), ())):
        handler(event)


def subscribers(event_type: type) -> list[Callable[[Any], None]]:
    """The handlers wired for an event type (for tests and diagnostics)."""
    _ensure_wired()
    return list(_handlers.get(event_type, ()))


# -- the events ----------------------------------------------------------------------------------
# Fields hold the publisher's own objects (session, connection, receipt) typed as Any: the events module
# is in the lowest layer and names no higher-layer type.


@dataclass(frozen=True)
class InfrastructureDeployed:
    """Shared contracts were deployed (or found); published inside the registry's database transaction."""

    conn: Any  # the open sqlalchemy Connection of that transaction
    store: Any  # custody.store.Store
    chain_id: int
    deployed: list[Any]  # custody.contracts.deploy.Deployed items
    actor: str


@dataclass(frozen=True)
class ApprovalSigned:
    """An owner's signature on a proposal was stored (after its transaction committed)."""

    session: Any  # custody.session.Session
    safe: str
    safe_tx_hash: str
    signer: str


@dataclass(frozen=True)
class ConfirmationRecorded:
    """An out-of-band confirmation of a proposal was stored (after its transaction committed)."""

    session: Any
    safe: str
    safe_tx_hash: str
    confirmer: str
    method: str


@dataclass(frozen=True)
class ProposalExecuted:
    """A proposal's Safe transaction was mined successfully and recorded."""

    session: Any
    proposal_id: int
    receipt: Any  # custody.chain.transactions.Receipt
