"""The domain event bus (custody/events.py) and its one composition root (custody/_wiring.py).

Domains publish events; only the composition root subscribes handlers, so which domain reacts to which step
is read in one place. These checks fail when a module elsewhere subscribes, when an event is published that
nothing reacts to (or wired but never published), and when the order of a proposal's reactions changes.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

from custody import _wiring, events
from tests.conftest import REPO

PACKAGE = REPO / "custody"
ROOT_FILE = PACKAGE / "_wiring.py"
EVENT_TYPES = [
    cls
    for _, cls in inspect.getmembers(events, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__
]


def _called_names(source: str, function: str) -> list[ast.Call]:
    """Calls of ``function`` or ``<anything>.function`` in ``source``."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name == function:
                calls.append(node)
    return calls


def subscribing_modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in (ROOT_FILE, PACKAGE / "events.py"):
            continue
        if _called_names(path.read_text(encoding="utf-8"), "subscribe"):
            found.append(str(path.relative_to(REPO)))
    return found


def published_event_names() -> set[str]:
    """Names of the event classes constructed inside a ``publish(...)`` call anywhere in custody/."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for call in _called_names(path.read_text(encoding="utf-8"), "publish"):
            for arg in call.args:
                if isinstance(arg, ast.Call):
                    func = arg.func
                    names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_the_bus_defines_events() -> None:
    assert {cls.__name__ for cls in EVENT_TYPES} >= {"ApprovalSigned", "ProposalExecuted", "InfrastructureDeployed"}


def test_only_the_composition_root_subscribes() -> None:
    assert _wiring.__name__ == events.COMPOSITION_ROOT
    assert subscribing_modules() == []


def test_a_subscription_outside_the_root_is_found() -> None:
    planted = "from custody import events\nevents.subscribe(events.ApprovalSigned, print)\n"
    assert _called_names(planted, "subscribe")
    assert not _called_names("subscriber = 1\nsubscribers(x)\n", "subscribe")


def test_every_event_is_both_published_and_handled() -> None:
    published = published_event_names()
    for cls in EVENT_TYPES:
        assert cls.__name__ in published, f"{cls.__name__} is never published"
        assert events.subscribers(cls), f"{cls.__name__} is published but nothing subscribes to it"


def test_an_executed_proposal_updates_its_timelock_operation_before_its_badge() -> None:
    handlers = [h.__name__ for h in events.subscribers(events.ProposalExecuted)]
    assert handlers == ["_update_timelock_operation", "_attest_execution"]
