"""``MicroVault``: one Safe + timelock (+ guard, + exit module) created from a policy template.

A vault proposes like an account (ape-safe's ``SafeAccount``): :meth:`MicroVault.propose_transfer` returns a
:class:`~custody.Proposal` to sign and execute. Every method delegates to the vault domain
(:mod:`custody.vault.service`, ``proposals``, ``funding``, ``resilience``, ``exit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custody._api.proposal import Proposal
from custody.chain.transactions import Receipt
from custody.exceptions import InputError
from custody.policy.template import Policy
from custody.signers.base import Signer
from custody.types import Address, Operation
from custody.vault import exit as exit_domain
from custody.vault import proposals as proposals_domain
from custody.vault import resilience, spend_window
from custody.vault import service as vault_service
from custody.vault.funding import Funding, fund_vault
from custody.vault.identities import resolve_proposer

if TYPE_CHECKING:
    from custody._api.workspace import Workspace


class MicroVault:
    """A micro-vault of the workspace, by its recorded addresses; live state is read from the chain on demand.

    Obtained from :meth:`Workspace.create_vault`, :meth:`Workspace.vault` or :meth:`Workspace.vaults`.
    """

    def __init__(self, workspace: Workspace, record: vault_service.VaultRecord) -> None:
        self._workspace = workspace
        self._record = record

    def __repr__(self) -> str:
        return f"<custody.MicroVault {self.id} {self.name} ({self.risk_class}) {self.safe}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MicroVault) and (other.safe, other.chain_id) == (self.safe, self.chain_id)

    def __hash__(self) -> int:
        return hash((self.safe, self.chain_id))

    # -- identity ----------------------------------------------------------------------------------
    @property
    def record(self) -> vault_service.VaultRecord:
        """What the workspace recorded about the vault (addresses, template, creation transaction)."""
        return self._record

    @property
    def id(self) -> int:
        """The vault's id in this workspace."""
        return self._record.id

    @property
    def name(self) -> str:
        """The vault's name (the template's ``name`` unless given at creation)."""
        return self._record.name

    @property
    def chain_id(self) -> int:
        """The chain the vault lives on."""
        return self._record.chain_id

    @property
    def risk_class(self) -> str:
        """``hot``, ``warm``, ``cold`` or ``deep-cold`` (from the template)."""
        return self._record.risk_class

    @property
    def safe(self) -> Address:
        """The vault's Safe address: where funds are held and transfers come from."""
        return self._record.safe

    address = safe

    @property
    def timelock(self) -> Address:
        """The vault's VaultTimelock: the only path for configuration changes."""
        return self._record.timelock

    @property
    def policy(self) -> Policy:
        """The policy template the vault was created from (or last changed to), parsed.

        Raises:
            TemplateError: the recorded template text no longer parses (workspace altered).
        """
        return self._record.policy()

    # -- live state --------------------------------------------------------------------------------
    def state(self) -> vault_service.VaultState:
        """Read the vault's live configuration and balances (``custody vault show``).

        Returns:
            Owners, threshold, nonce, modules, guard and its on-chain policy, timelock delay and roles,
            balances of ETH and of every token in the policy, all read at one block.

        Raises:
            ChainError: the chain cannot be read.
            DeploymentError: the chain's custody infrastructure is not recorded.
        """
        return vault_service.read_state(self._workspace.session, self._record)

    def balances(self) -> list[vault_service.TokenBalance]:
        """The vault's balances: ETH first, then each ERC-20 of its policy.

        Returns:
            One :class:`TokenBalance` per asset (``balance`` in base units, ``amount`` as an exact decimal
            string; both ``None`` with a ``problem`` when a policy token has no contract on this chain).

        Raises:
            ChainError: the chain cannot be read.
        """
        return self.state().balances

    def balance(self, token: str | None = None) -> vault_service.TokenBalance:
        """One balance of the vault.

        Args:
            token: an ERC-20 address or symbol of the vault's policy; ``None`` for native ETH.

        Returns:
            The :class:`TokenBalance` (``amount`` is the exact decimal string, e.g. ``"2.5"``).

        Raises:
            InputError: ``token`` is not an asset of the vault's policy.
            ChainError: the chain cannot be read.
        """
        wanted = None if token is None else token.lower()
        for held in self.balances():
            if (held.token is None and wanted in (None, "eth")) or (
                wanted is not None and wanted in {(held.token or "").lower(), held.symbol.lower()}
            ):
                return held
        raise InputError(f"{token} is not an asset of vault {self.name}'s policy (assets: "
                         f"{', '.join(b.symbol for b in self.balances())})")  # fmt: skip

    @property
    def owners(self) -> list[Address]:
        """The Safe's current owners, read from the chain.

        Raises:
            ChainError: the chain cannot be read.
        """
        return proposals_domain.owners_and_threshold(self._workspace.session, self.safe)[0]

    @property
    def threshold(self) -> int:
        """How many owner signatures a transaction needs, read from the chain.

        Raises:
            ChainError: the chain cannot be read.
        """
        return proposals_domain.owners_and_threshold(self._workspace.session, self.safe)[1]

    # -- money in and out --------------------------------------------------------------------------
    def fund(self, amount: str, *, token: str | None = None, funder: str = "anvil:0") -> Funding:
        """Send ETH or an ERC-20 to the vault from a funded account (local Anvil chains only).

        Args:
            amount: exact decimal string in the asset's units (``"10"``, ``"0.5"``; see docs/amounts.md).
            token: ERC-20 address; ``None`` for native ETH.
            funder: signer URI of the account that pays.

        Returns:
            What was sent, by whom, in which transaction.

        Raises:
            VaultError: not a local Anvil chain, or the funder holds less than ``amount``.
            AmountError: ``amount`` is not a plain decimal or has too many decimals.
            InputError: ``token`` is not an ERC-20 contract.
            TransactionFailed: the transfer reverted.
        """
        return fund_vault(self._workspace.session, str(self.id), amount, token=token, funder_uri=funder)

    def propose_transfer(
        self,
        to: str,
        amount: str,
        *,
        token: str | None = None,
        proposer: str | None = None,
        description: str = "",
        nonce: int | None = None,
        force: bool = False,
    ) -> Proposal:
        """Propose sending ``amount`` of ETH (or ``token``) to ``to`` (``custody tx propose``).

        Refused before anything is recorded when the vault's on-chain policy would reject it (same verdict
        as the guard), or when the risk engine denies it.

        Args:
            to: destination address (EIP-55 checksummed when mixed case).
            amount: exact decimal string in the asset's units (``"2.5"``); floats are refused.
            token: ERC-20 address; ``None`` for native ETH.
            proposer: who proposes: a signer URI (recorded with its address) or a person enrolled for
                out-of-band confirmation; ``None`` records no proposer (such a proposal can never be
                confirmed out of band).
            description: free text shown to signers [a summary of the decoded call].
            nonce: Safe nonce [the next free one].
            force: record it even if the policy would reject it (drills; the chain still rejects it).

        Returns:
            The stored proposal, ready to :meth:`~Proposal.sign`.

        Raises:
            PolicyViolation: the vault's policy rejects the transfer (rule, limit and what is left attached).
            AmountError, AddressError, InputError: malformed amount, address, token or proposer.
            RiskDenied: the risk engine denied it (recorded, withdrawn).
            StaleProposal: ``nonce`` is already used.
            ProposalError: an identical proposal exists already.
        """
        session = self._workspace.session
        record = proposals_domain.propose_transfer(
            session, self.id, to=to, amount=amount, token=token, nonce=nonce, description=description,
            proposer=resolve_proposer(session, proposer or "", optional=True), force=force,
        )  # fmt: skip
        return Proposal(self._workspace, record)

    def propose(
        self,
        to: str,
        *,
        value: int = 0,
        data: bytes = b"",
        operation: Operation = Operation.CALL,
        proposer: str | None = None,
        description: str = "",
        nonce: int | None = None,
        force: bool = False,
    ) -> Proposal:
        """Propose an arbitrary Safe transaction (a contract call, a MultiSend batch).

        Args:
            to: target address.
            value: wei sent along.
            data: calldata.
            operation: ``Operation.CALL`` or ``Operation.DELEGATECALL`` (only to the allowlisted MultiSend).
            proposer: a signer URI or an enrolled person (see :meth:`propose_transfer`).
            description: free text shown to signers.
            nonce: Safe nonce [the next free one].
            force: record it even if the policy would reject it.

        Returns:
            The stored proposal.

        Raises:
            PolicyViolation: the vault's policy rejects it.
            InputError: malformed target, value or proposer.
            RiskDenied: the risk engine denied it.
            StaleProposal, ProposalError: nonce already used, or an identical proposal exists.
        """
        session = self._workspace.session
        record = proposals_domain.propose(
            session, self.id, to=to, value=value, data=data, operation=operation, nonce=nonce,
            description=description, proposer=resolve_proposer(session, proposer or "", optional=True), force=force,
        )  # fmt: skip
        return Proposal(self._workspace, record)

    def proposals(self) -> list[Proposal]:
        """This vault's proposals, oldest first, in every state.

        Returns:
            One :class:`Proposal` per recorded proposal.

        Raises:
            HashMismatch: a stored proposal no longer hashes to its recorded safeTxHash.
        """
        session = self._workspace.session
        return [Proposal(self._workspace, p) for p in proposals_domain.list_proposals(session, self._record)]

    # -- configuration changes (through the timelock) --------------------------------------------------
    def pause(self, *, proposer: str | None = None) -> Proposal:
        """Propose freezing the vault now (no delay): no owner-signed transfer or call until unpaused.

        Args:
            proposer: a signer URI or an enrolled person.

        Returns:
            The pause proposal, to sign and execute.

        Raises:
            VaultError: the vault has no guard to pause.
            ProposalError: an identical proposal exists.
        """
        session = self._workspace.session
        who = resolve_proposer(session, proposer or "", optional=True)
        return Proposal(self._workspace, resilience.pause(session, self.id, proposer=who))

    def prime_spend_window(self) -> spend_window.Priming:
        """Pre-write the ring slots of the vault's clone guard that were never written (one transaction from
        the workspace's sender; anyone may send it), so that no transfer pays a slot's first write.

        A dedicated guard primed its ring at creation, and a second priming has nothing to write: both
        send no transaction and report 0 slots.

        Returns:
            What was done: ``slots`` written, the guard's ``deployment``, ``tx_hash`` and ``gas_used`` (None
            when nothing was sent).

        Raises:
            VaultError: the vault has no guard, or its guard is not a registered CustodyGuard build.
        """
        return spend_window.prime_spend_window(self._workspace.session, self.id)

    def unpause(self, *, proposer: str | None = None) -> Proposal:
        """Propose lifting the freeze: scheduled on the timelock, effective after its delay.

        Args:
            proposer: a signer URI or an enrolled person.

        Returns:
            The proposal that schedules the operation; execute it once signed, then execute it again after
            the delay (:attr:`Proposal.timelock_operation` tells when).

        Raises:
            VaultError: the vault has no guard.
            ProposalError: an identical proposal exists.
        """
        session = self._workspace.session
        who = resolve_proposer(session, proposer or "", optional=True)
        proposal, _operation = resilience.unpause(session, self.id, proposer=who)
        return Proposal(self._workspace, proposal)

    def rotate_owner(self, old: str, new: str, *, proposer: str | None = None) -> Proposal:
        """Propose swapping owner ``old`` for ``new`` through the timelock (``custody vault rotate-owner``).

        Args:
            old: address of the owner to remove.
            new: address of the owner to add.
            proposer: a signer URI or an enrolled person.

        Returns:
            The proposal that schedules the swap (see :meth:`unpause` for the two executions).

        Raises:
            AddressError: malformed address.
            TemplateError: the rotated template is invalid (``old`` is not an owner, ``new`` is one already).
            ProposalError: an identical proposal exists.
        """
        session = self._workspace.session
        who = resolve_proposer(session, proposer or "", optional=True)
        workdir = session.workspace.home / "templates"
        proposal, _operation = resilience.rotate_owner(session, self.id, old, new, workdir, proposer=who)
        return Proposal(self._workspace, proposal)

    def set_threshold(self, threshold: int, *, proposer: str | None = None) -> Proposal:
        """Propose a new signature threshold through the timelock (``custody vault set-threshold``).

        Args:
            threshold: the number of owner signatures transactions will need.
            proposer: a signer URI or an enrolled person.

        Returns:
            The proposal that schedules the change (see :meth:`unpause` for the two executions).

        Raises:
            TemplateError: the threshold is out of range for the owners.
            ProposalError: an identical proposal exists.
        """
        session = self._workspace.session
        who = resolve_proposer(session, proposer or "", optional=True)
        workdir = session.workspace.home / "templates"
        proposal, _operation = resilience.change_threshold(session, self.id, threshold, workdir, proposer=who)
        return Proposal(self._workspace, proposal)

    # -- emergency exit (ExitModule) ---------------------------------------------------------------------
    def exit_status(self) -> exit_domain.ExitStatus:
        """The exit module's custodians, quorum, escrow delay and any pending exit (``custody exit status``).

        Returns:
            The module's configuration and state, read from the chain.

        Raises:
            VaultError: the vault has no exit module.
        """
        return exit_domain.status(self._workspace.session, self.id)

    def sign_exit(self, custodian: str, signer: str | Signer) -> exit_domain.ExitRequest:
        """Approve an emergency exit to ``custodian`` as one initiator (EIP-712 ExitRequest).

        Args:
            custodian: one of the policy's fallback custodians.
            signer: an initiator (a council member, or an owner): signer URI or opened signer.

        Returns:
            The exit request with the signatures collected so far.

        Raises:
            VaultError: no exit module, or ``custodian`` is not a fallback custodian.
            SignerError: the signer cannot sign, or is not an initiator.
        """
        session = self._workspace.session
        opened = session.signer(signer) if isinstance(signer, str) else signer
        request = exit_domain.open_request(session, self.id, custodian)
        request, _added = exit_domain.sign(session, request, opened)
        return request

    def initiate_exit(self, custodian: str) -> Receipt:
        """Submit the collected exit signatures: the escrow delay starts (``custody exit initiate``).

        Args:
            custodian: the custodian the signed request names.

        Returns:
            The receipt of the initiating transaction.

        Raises:
            VaultError: no signed request for ``custodian``, or fewer signatures than the quorum.
            TransactionFailed: the module refused (decoded reason).
        """
        _request, receipt = exit_domain.initiate_for(self._workspace.session, self.id, custodian)
        return receipt

    def cancel_exit(self, *, owner: str | Signer | None = None) -> Receipt | Proposal:
        """Cancel the pending exit: directly as an owner (where the policy allows), else by a Safe proposal.

        Args:
            owner: an owner's signer (URI or opened) to cancel directly; ``None`` to propose the cancellation.

        Returns:
            The cancelling transaction's receipt, or the proposal to sign and execute.

        Raises:
            VaultError: no exit is pending, or owners may not cancel directly.
            TransactionFailed: the module refused (decoded reason).
        """
        session = self._workspace.session
        if owner is not None:
            opened = session.signer(owner) if isinstance(owner, str) else owner
            return exit_domain.cancel_as_owner(session, self.id, opened)
        target, data = exit_domain.cancel_proposal_data(session, self.id)
        return self.propose(target, data=data, description="cancel the pending emergency exit")

    def finalize_exit(self) -> Receipt:
        """Complete the pending exit after the escrow delay (anyone may; ``custody exit finalize``).

        Returns:
            The receipt of the finalizing transaction.

        Raises:
            VaultError: no exit is pending.
            TransactionFailed: the escrow delay has not passed (decoded reason).
        """
        return exit_domain.finalize(self._workspace.session, self.id)
