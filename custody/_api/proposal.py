"""``Proposal``: one Safe transaction in flight — sign it, execute it, read its status, discard it.

Every method delegates to :mod:`custody.vault.proposals` (and :mod:`custody.policy.change` for proposals that
schedule a timelock operation); nothing here re-implements a check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from custody.chain.transactions import Receipt
from custody.policy.change import execute as execute_proposal_or_operation
from custody.safe.signatures import OwnerSignature
from custody.signers.base import Signer
from custody.vault import proposals as proposals_domain
from custody.vault import timelock_ops
from custody.vault.clear import require_acknowledged
from custody.vault.proposals import ProposalState

if TYPE_CHECKING:
    from custody._api.vault import MicroVault
    from custody._api.workspace import Workspace


class Proposal:
    """A transfer or call proposed out of a vault, with the owner signatures collected for it.

    Obtained from :meth:`MicroVault.propose_transfer`, :meth:`MicroVault.propose`, :meth:`Workspace.proposal`
    or :meth:`MicroVault.proposals`. The stored record (a frozen value) is :attr:`record`; it is re-read after
    every action, and :meth:`refresh` re-reads it on demand (another process may have signed meanwhile).
    """

    def __init__(self, workspace: Workspace, record: proposals_domain.Proposal) -> None:
        self._workspace = workspace
        self._record = record

    def __repr__(self) -> str:
        return f"<custody.Proposal {self.id} {self.status.value} nonce={self.nonce} {self.safe_tx_hash}>"

    # -- identity and state ----------------------------------------------------------------------
    @property
    def record(self) -> proposals_domain.Proposal:
        """The stored proposal (frozen): its ``safe_tx``, ``signatures``, ``state`` and execution facts."""
        return self._record

    @property
    def id(self) -> int:
        """The proposal's id in this workspace (what ``custody tx show ID`` takes)."""
        return self._record.id

    @property
    def safe_tx_hash(self) -> str:
        """The EIP-712 safeTxHash owners sign, ``0x``-prefixed hex."""
        return self._record.safe_tx_hash

    @property
    def nonce(self) -> int:
        """The Safe nonce this proposal uses."""
        return self._record.safe_tx.nonce

    @property
    def description(self) -> str:
        """The text shown to signers."""
        return self._record.description

    @property
    def status(self) -> ProposalState:
        """The proposal's state as last read: ``proposed``, ``executing``, ``executed``, ``failed`` or ``discarded``."""
        return self._record.state

    @property
    def signatures(self) -> tuple[OwnerSignature, ...]:
        """The owner signatures collected so far (one per owner, verified when they were stored)."""
        return self._record.signatures

    @property
    def exec_tx_hash(self) -> str | None:
        """The ``execTransaction`` transaction hash once executed (or being executed), else ``None``."""
        return self._record.exec_tx_hash

    @property
    def vault(self) -> MicroVault:
        """The vault this proposal spends from.

        Raises:
            UnknownVault: the vault is no longer recorded in the workspace.
            VaultError: the vault's Safe has no code on the chain (the chain was reset).
        """
        return self._workspace.vault(self._record.vault_id)

    @property
    def timelock_operation(self) -> timelock_ops.TimelockOp | None:
        """The timelock operation this proposal schedules (owner rotation, threshold, unpause, policy change),
        or ``None`` for a plain transfer or call."""
        return timelock_ops.op_for_proposal(self._workspace.session, self.id)

    def refresh(self) -> Proposal:
        """Re-read the proposal from the workspace.

        Returns:
            This object, with :attr:`record` (and so :attr:`status`, :attr:`signatures`) up to date.

        Raises:
            UnknownProposal: the proposal is not recorded for this workspace's chain.
            HashMismatch: the stored proposal no longer hashes to its recorded safeTxHash (workspace altered).
        """
        self._record = proposals_domain.get_proposal(self._workspace.session, self.id)
        return self

    def describe(self) -> dict[str, Any]:
        """What a signer must see before signing (the ``custody tx show --json`` object).

        Returns:
            The decoded call, risk kinds, domain/message/safeTx hashes (checked against the Safe's own
            ``getTransactionHash``), owners, threshold, signatures, out-of-band and risk-engine state.

        Raises:
            ChainError: the chain cannot be read.
        """
        return proposals_domain.describe(self._workspace.session, self._record)

    # -- actions -----------------------------------------------------------------------------------
    def sign(self, signer: str | Signer, *, acknowledge: Iterable[str] = (), blind: bool = False) -> OwnerSignature:
        """Approve the proposal as one owner (``custody tx sign ID --signer URI``).

        The safeTxHash is checked against the Safe before the signer is asked; risky payloads (DELEGATECALL,
        owner/guard/module changes, gas refunds) are refused unless each of their risk kinds is acknowledged;
        the pre-sign risk engine decides (and is ledgered) before any backend sees the transaction. Signing
        twice with the same owner stores one signature.

        Args:
            signer: a signer URI (``keystore:NAME``, ``pkcs11:token=…;object=…``, ``ledger:44'/60'/0'/0/0``,
                ``trezor:m/44'/60'/0'/0/0``, ``anvil:N``) or an already opened signer.
            acknowledge: the risk kinds of a risky payload the caller has reviewed (``--i-understand``).
            blind: hardware wallets only: sign the domain/message hashes without on-device field display.

        Returns:
            The owner's signature as stored (the earlier one if this owner had signed already).

        Raises:
            RiskNotAcknowledged: a risk kind of the payload is not in ``acknowledge``.
            NotAnOwner: the signer is not an owner of the vault.
            AlreadyExecuted, StaleProposal, ProposalError: the proposal is executed, its nonce was used, or
                it was discarded.
            HashMismatch: the local safeTxHash differs from the Safe's.
            RiskDenied: the risk engine denied the approval.
            SignerError: the signer cannot be opened or refused (``SignerLocked``, ``UserRejected``, …).
        """
        session = self._workspace.session
        proposal = proposals_domain.get_proposal(session, self.id)
        require_acknowledged(
            proposals_domain.describe(session, proposal)["risk_kinds"], tuple(acknowledge), what=f"proposal {self.id}"
        )
        if isinstance(signer, str):
            context = session.signers()
            previous, context.blind = context.blind, blind
            try:
                signer = session.signer(signer)
            finally:
                context.blind = previous
        signature, _added = proposals_domain.sign(session, proposal, signer)
        self.refresh()
        return signature

    def execute(self, *, force: bool = False) -> Receipt:
        """Execute the proposal on chain once enough owners signed (``custody tx execute ID``).

        For a proposal that scheduled a timelock operation and was executed already, this completes that
        operation once its delay has passed. Execution is journaled: an interrupted call resumes by re-sending
        the same signed bytes.

        Args:
            force: skip the policy pre-flight (drills; the chain still enforces the policy).

        Returns:
            The receipt of the ``execTransaction`` (or timelock ``execute``) transaction.

        Raises:
            NotEnoughSignatures: fewer valid owner signatures than the threshold; nothing was sent.
            PolicyViolation: the vault's guard would reject it now; nothing was sent.
            ConfirmationRequired: the policy asks for an out-of-band confirmation that is missing.
            TimelockNotReady: the scheduled operation's delay has not passed.
            AlreadyExecuted, StaleProposal, ProposalError: wrong state, nonce used, or ExecutionFailure.
            RiskDenied, RiskRequirementMissing: the risk engine refused, or a Warn's requirements are unmet.
            TransactionFailed: the transaction reverted (decoded reason).
        """
        _what, receipt = execute_proposal_or_operation(self._workspace.session, self.id, force=force)
        self.refresh()
        return receipt

    def discard(self) -> None:
        """Withdraw the proposal (never executed); its nonce becomes free again.

        Raises:
            ProposalError: the proposal is not open (executed, executing, failed or discarded already).
        """
        self._record = proposals_domain.discard(self._workspace.session, self.refresh()._record)
