"""The registry of drill actions: what each action is called, which arguments it takes, who acts.

Actions are plain functions on top of the service layer (``custody/drills/actions*.py``) registered
with :func:`action`. The playbook validator (:mod:`custody.drills.playbook`) checks every step
against these specs, so a typo is a file:line:field error before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custody.drills.context import DrillContext

# Argument kinds: how the validator reads the YAML text and how the runner resolves it.
KINDS = (
    "vault",  # a vault alias (setup `as:` or a create_vault step's `as:`)
    "vaults",  # a list of vault aliases
    "proposal",  # a proposal alias (a propose_transfer / transfer step's `as:`)
    "address",  # a vault alias, a signer URI (anvil:N, key:NAME, …) or a 0x address
    "amount",  # a human decimal amount in the asset's units ("2.5")
    "asset",  # ETH, a symbol of the vault's policy (dUSD) or a token address
    "int",
    "bool",
    "duration",  # 90s, 30m, 2h, 1d or seconds
    "text",
    "alias",  # a new name this step defines (as:)
)

# Who acts: "signers" one or more signer URIs (required), "signer" exactly one, "optional" zero or
# more (the operator account that pays gas acts otherwise), "none" no actor field at all.
ACTOR_KINDS = ("signers", "signer", "optional", "none")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    defines: str = ""  # kind "alias": what the new name stands for (vault | proposal | key)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    summary: str
    params: tuple[Param, ...]
    actor: str
    run: Callable[[DrillContext, Mapping[str, Any], tuple[str, ...]], dict[str, Any]]
    # assert_* actions: Expectation fields their own arguments imply, from (args, line); merged with `expect:`
    implied: Callable[[Mapping[str, Any], int], dict[str, Any]] | None = None
    one_of: tuple[str, ...] = ()  # exactly one of these arguments must be given

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.name,
            "summary": self.summary,
            "actor": self.actor,
            "params": [
                {"name": p.name, "kind": p.kind, "required": p.required, "choices": list(p.choices), "help": p.help}
                for p in self.params
            ],
        }


ACTIONS: dict[str, ActionSpec] = {}


def action(
    name: str,
    summary: str,
    *params: Param,
    actor: str = "none",
    implied: Callable[[Mapping[str, Any], int], dict[str, Any]] | None = None,
    one_of: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as drill action ``name``."""
    if actor not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {actor!r}")
    for p in params:
        if p.kind not in KINDS:
            raise ValueError(f"action {name}: unknown argument kind {p.kind!r}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        ACTIONS[name] = ActionSpec(name, summary, tuple(params), actor, fn, implied, one_of)
        return fn

    return register
