"""Resilience operations: freeze a vault now, unfreeze it through the timelock, rotate an owner,
change the threshold. (The emergency exit lives in :mod:`custody.vault.exit`.)
"""

from __future__ import annotations

from pathlib import Path

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector_of

from custody.exceptions import VaultError
from custody.policy import change, edit
from custody.policy.onchain import installed_guard
from custody.session import Session
from custody.types import Address
from custody.vault import proposals, timelock_ops
from custody.vault.service import VaultRecord, get_vault

SET_PAUSED = selector_of("setPaused(bool)")


def _guard(session: Session, vault: VaultRecord) -> Address:
    guard = installed_guard(session, vault.safe)
    if guard is None:
        raise VaultError(f"vault {vault.name} has no guard to pause")
    return guard


def pause(session: Session, vault_ref: str | int, *, proposer: str = "") -> proposals.Proposal:
    """Propose freezing all owner-signed transfers and calls (effective when the owners execute it)."""
    vault = get_vault(session, vault_ref)
    data = SET_PAUSED + encode(["bool"], [True])
    return proposals.propose(
        session, vault.id, to=_guard(session, vault), data=data, description="pause the vault", proposer=proposer
    )


def unpause(
    session: Session, vault_ref: str | int, *, proposer: str = ""
) -> tuple[proposals.Proposal, timelock_ops.TimelockOp]:
    """Schedule lifting the freeze on the vault's timelock (it takes effect only after the delay)."""
    vault = get_vault(session, vault_ref)
    guard = _guard(session, vault)
    call = timelock_ops.ScheduledCall(guard, 0, SET_PAUSED + encode(["bool"], [False]), "unpause the vault")
    return timelock_ops.schedule(
        session, vault, [call], kind="unpause", description="unpause the vault", salt_seed=b"unpause", proposer=proposer
    )


def _derived(session: Session, vault: VaultRecord, text: str, workdir: Path, suffix: str) -> Path:
    path = Path(workdir) / f"{vault.name}-{suffix}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def rotate_owner(
    session: Session, vault_ref: str | int, old: str, new: str, workdir: Path, *, proposer: str = ""
) -> tuple[proposals.Proposal, timelock_ops.TimelockOp]:
    """Swap an owner through the timelock (the recorded template is edited accordingly)."""
    vault = get_vault(session, vault_ref)
    text = edit.replace_owner(vault.policy_source, old, new)
    return change.apply_change(session, vault.id, _derived(session, vault, text, workdir, "rotated"), proposer=proposer)


def change_threshold(
    session: Session, vault_ref: str | int, threshold: int, workdir: Path, *, proposer: str = ""
) -> tuple[proposals.Proposal, timelock_ops.TimelockOp]:
    """Lower or raise the signature threshold through the timelock."""
    vault = get_vault(session, vault_ref)
    text = edit.set_threshold(vault.policy_source, threshold)
    return change.apply_change(
        session, vault.id, _derived(session, vault, text, workdir, f"threshold-{threshold}"), proposer=proposer
    )
