"""The drill action catalogue: every action module, imported once so each registers its actions.

The action modules register themselves with :func:`custody.drills.spec.action` when imported; they depend on
``spec``, so ``spec`` cannot import them. Everything that needs the full set of actions (the playbook parser,
the runner, ``custody drill actions``) reads it here.
"""

from __future__ import annotations

from custody.drills import actions_exit, actions_ops, actions_vault
from custody.drills.spec import ACTIONS, ActionSpec

ACTION_MODULES = (actions_exit, actions_ops, actions_vault)


def registry() -> dict[str, ActionSpec]:
    """Every registered drill action by name."""
    return ACTIONS
