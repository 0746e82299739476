"""Micro-vault custody toolkit: Safe multisigs bounded by on-chain policy, HSM/hardware signing, audit.

The public Python API, one obvious way in::

    import custody

    ws = custody.open(home=None, rpc=None)            # workspace folder + chain (local Anvil auto-started)
    vault = ws.create_vault("policies/cold.yaml")     # or ws.vault("cold-reserve")
    p = vault.propose_transfer(to, "2.5")             # amount: an exact decimal string
    p.sign("keystore:officer-1"); p.sign("keystore:officer-2")
    receipt = p.execute()
    assert ws.audit.verify().verdict == "ok"

Names are loaded on first use (module ``__getattr__``): ``import custody`` itself imports no web3, so
``custody --help`` and scripts that only need an exception class start fast. Everything listed in
``__all__`` is documented in docs/api.md; other modules are internals and may change.
"""

from __future__ import annotations

import importlib as _importlib

TYPE_CHECKING = False  # not `from typing import …`: importing typing alone costs more than the rest of this file

__all__ = [
    "AlreadyExecuted",
    "AmountError",
    "Attestations",
    "Audit",
    "ChainError",
    "CustodyError",
    "DrillFailed",
    "InputError",
    "MicroVault",
    "NotAnOwner",
    "NotEnoughSignatures",
    "PolicyViolation",
    "Proposal",
    "ProposalError",
    "ProposalState",
    "SignerError",
    "TransactionFailed",
    "UnknownProposal",
    "UnknownVault",
    "VaultError",
    "Workspace",
    "__version__",
    "format_amount",
    "open",
    "parse_amount",
]

_EXCEPTIONS = "custody.exceptions"
# public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "open": "custody._api.workspace",
    "Workspace": "custody._api.workspace",
    "Audit": "custody._api.workspace",
    "Attestations": "custody._api.workspace",
    "MicroVault": "custody._api.vault",
    "Proposal": "custody._api.proposal",
    "ProposalState": "custody.vault.proposals",
    "format_amount": "custody.types",
    "parse_amount": "custody.types",
    **{
        name: _EXCEPTIONS
        for name in ("AlreadyExecuted", "AmountError", "ChainError", "CustodyError", "DrillFailed", "InputError", "NotAnOwner",
                     "NotEnoughSignatures", "PolicyViolation", "ProposalError", "SignerError", "TransactionFailed",
                     "UnknownProposal", "UnknownVault", "VaultError")
    },
}  # fmt: skip


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import version

        value: object = version("custody")
    elif name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'custody' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names above load lazily
    from custody._api.proposal import Proposal
    from custody._api.vault import MicroVault
    from custody._api.workspace import Attestations, Audit, Workspace, open
    from custody.exceptions import (
        AlreadyExecuted,
        AmountError,
        ChainError,
        CustodyError,
        DrillFailed,
        InputError,
        NotAnOwner,
        NotEnoughSignatures,
        PolicyViolation,
        ProposalError,
        SignerError,
        TransactionFailed,
        UnknownProposal,
        UnknownVault,
        VaultError,
    )
    from custody.types import format_amount, parse_amount
    from custody.vault.proposals import ProposalState

    __version__: str

del TYPE_CHECKING
