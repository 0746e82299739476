"""``custody.open`` and ``Workspace``: the one way in — a workspace folder, its chain, and what lives there.

A :class:`Workspace` holds one :class:`~custody.session.Session` (workspace folder + chain connection + the
account that pays gas), opened the same way the CLI opens it: the chain is auto-started for a local
workspace, and checked against the chain identity the workspace recorded before anything is written.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from custody._api.proposal import Proposal
from custody._api.vault import MicroVault
from custody.attest import auto as attest_auto
from custody.attest import badges
from custody.attest.schemas import step as attestation_step
from custody.attest.verify import Report as AttestReport
from custody.attest.verify import Verifier
from custody.audit import service as audit_service
from custody.audit.anchor import Anchor
from custody.audit.keys import SignedHead
from custody.audit.verify import VerifyReport
from custody.binding import check_binding, record_binding
from custody.chain.connection import connect
from custody.drills import DrillOptions, DrillReport, load_playbook, run_drill
from custody.exceptions import CustodyError, InputError
from custody.reconcile.collateral import resolve_token
from custody.reconcile.service import RunResult, run_reconcile
from custody.session import Session
from custody.signers.base import Signer
from custody.vault import proposals as proposals_domain
from custody.vault import service as vault_service
from custody.workspace import Workspace as WorkspaceFolder

log = logging.getLogger("custody")


def open(
    home: str | Path | None = None,
    rpc: str | None = None,
    *,
    sender: str | None = None,
    attester: str | None = None,
    autostart: bool = True,
) -> Workspace:
    """Open a custody workspace and connect to its chain.

    Args:
        home: the workspace folder [``$CUSTODY_HOME``, else ``./.custody``]; created if missing.
        rpc: attach to this RPC URL [``$CUSTODY_RPC``, else the workspace's local Anvil].
        sender: signer URI of the account that pays gas [``$CUSTODY_SENDER``, else ``anvil:0`` on Anvil].
        attester: signer URI of the attester key for automatic badges [``$CUSTODY_ATTESTER``, else none].
        autostart: start the workspace's local Anvil when no RPC is given and none is running.

    Returns:
        The open workspace; close it with :meth:`Workspace.close` or use it as a context manager.

    Raises:
        ChainNotRunning: no RPC, no running local chain, and ``autostart`` is false.
        RpcUnreachable: the RPC does not answer.
        ForeignChain: the chain has the recorded chain id but is not the chain this workspace recorded.
        WorkspaceError: the workspace folder or its database cannot be used.
        AnvilError: the local Anvil cannot be started.
    """
    folder = WorkspaceFolder(home)
    try:
        chain, started = folder.connect(rpc, autostart=autostart)
        check_binding(chain, folder.store, where=str(folder.home))
    except BaseException:
        folder.close()
        raise
    session = Session(workspace=folder, chain=chain, sender_uri=sender, attester_uri=attester)
    return Workspace(session, started_chain=started)


class Workspace:
    """An open workspace: its vaults, proposals, signers, audit ledger, badges, reconciliations and drills."""

    def __init__(self, session: Session, *, started_chain: bool = False) -> None:
        self._session = session
        self._started_chain = started_chain
        self._closed = False
        self.audit = Audit(self)
        """The tamper-evident audit ledger: :meth:`Audit.verify`, :meth:`Audit.export`, heads and anchors."""
        self.attest = Attestations(self)
        """Attestation badges (EAS): :meth:`Attestations.issue`, :meth:`Attestations.verify_vault`, …"""

    def __repr__(self) -> str:
        return f"<custody.Workspace {self.home} chain {self.chain_id}>"

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what it is --------------------------------------------------------------------------------
    @property
    def session(self) -> Session:
        """The underlying session, for the domain functions (``custody.vault.*`` etc.) the API does not wrap."""
        return self._session

    @property
    def home(self) -> Path:
        """The workspace folder."""
        return self._session.workspace.home

    @property
    def chain_id(self) -> int:
        """The connected chain's id."""
        return self._session.chain_id

    @property
    def rpc_url(self) -> str:
        """The RPC URL the workspace is connected to."""
        return self._session.chain.url

    @property
    def started_chain(self) -> bool:
        """Whether :func:`custody.open` started the workspace's local Anvil (it keeps running after close)."""
        return self._started_chain

    def close(self) -> None:
        """Record the chain identity, close the signers this workspace opened and the database.

        Idempotent. The local chain keeps running (``custody chain down`` stops it).
        """
        if self._closed:
            return
        self._closed = True
        try:
            record_binding(self._session.chain, self._session.store)
        except CustodyError as exc:
            log.warning("could not record the chain identity: %s", exc)
        self._session.close()

    # -- signers -----------------------------------------------------------------------------------
    def signer(self, uri: str) -> Signer:
        """Open a signer by URI; it is closed with the workspace.

        Args:
            uri: ``keystore:NAME|PATH``, ``pkcs11:token=…;object=…``, ``ledger:44'/60'/0'/0/0``,
                ``trezor:m/44'/60'/0'/0/0`` or ``anvil:N``.

        Returns:
            The signer (``.address``, ``.uri``).

        Raises:
            SignerUriError: unknown scheme or malformed URI.
            DeviceNotFound: the keystore file, token or device is not there.
            SignerLocked: wrong passphrase or PIN.
        """
        return self._session.signer(uri)

    # -- vaults ------------------------------------------------------------------------------------
    def create_vault(self, template: str | Path, *, name: str | None = None) -> MicroVault:
        """Deploy a micro-vault from a policy template (``custody vault create``).

        Safe, VaultTimelock, CustodyGuard (and ExitModule when the template has an ``exit`` section) are
        created in one transaction at deterministic addresses; a creation that was sent but not recorded is
        adopted, not repeated.

        Args:
            template: path of the policy template (YAML).
            name: the vault's name [the template's ``name``].

        Returns:
            The new vault.

        Raises:
            TemplateError: the template is unreadable or invalid (file, line and field named).
            VaultError: a vault of that name exists on this chain.
            DeploymentError: the chain has no custody infrastructure and is not a local Anvil.
            TransactionFailed: the creation reverted.
        """
        record, _facts = vault_service.create_vault(self._session, Path(template), name=name)
        return MicroVault(self, record)

    def vault(self, ref: str | int) -> MicroVault:
        """A vault of this workspace by id, name or Safe address.

        Args:
            ref: the vault's id, name or Safe address.

        Returns:
            The vault.

        Raises:
            UnknownVault: no such vault on this chain (the known ones are listed).
            VaultError: the vault's Safe has no code on the chain (the chain was reset).
        """
        return MicroVault(self, vault_service.get_vault(self._session, ref))

    def vaults(self) -> list[MicroVault]:
        """The workspace's vaults on the connected chain, oldest first.

        Returns:
            One :class:`MicroVault` per recorded vault.
        """
        return [MicroVault(self, record) for record in vault_service.list_vaults(self._session)]

    def proposal(self, ref: str | int) -> Proposal:
        """A proposal by id or safeTxHash (a unique prefix of at least 10 characters works).

        Args:
            ref: proposal id or safeTxHash (prefix).

        Returns:
            The proposal.

        Raises:
            UnknownProposal: no such proposal on this chain, or an ambiguous prefix.
            HashMismatch: the stored proposal no longer hashes to its safeTxHash (workspace altered).
        """
        return Proposal(self, proposals_domain.get_proposal(self._session, ref))

    def proposals(self) -> builtins.list[Proposal]:
        """Every proposal of the workspace on the connected chain, oldest first.

        Returns:
            One :class:`Proposal` per recorded proposal.

        Raises:
            HashMismatch: a stored proposal no longer hashes to its recorded safeTxHash.
        """
        return [Proposal(self, p) for p in proposals_domain.list_proposals(self._session)]

    # -- reconciliation and drills -------------------------------------------------------------------
    def reconcile(
        self,
        token: str,
        bars: str | Path,
        *,
        previous: str | Path | None = None,
        since_block: int | None = None,
        at_block: int | None = None,
        html: str | Path | None = None,
    ) -> RunResult:
        """Reconcile a CollateralToken against a bar list (``custody reconcile``); the run is recorded.

        Args:
            token: the token's address, or the symbol of a CollateralToken recorded in this workspace.
            bars: the bar list (CSV or JSON).
            previous: the previous bar list, to report what changed since.
            since_block: the block the previous list was valid at [from this workspace's earlier runs].
            at_block: reconcile as of this block [the latest].
            html: write a self-contained HTML report with charts here.

        Returns:
            The run: ``reconciliation`` (totals, findings, diff), ``exit_code`` (0 backed, 2 backing short,
            4 critical findings) and the recorded ``run_id``.

        Raises:
            BarListError: the bar list is unreadable or has invalid rows (each row and column named).
            ReconcileError: the token is unknown, or the index cannot be built at that block.
        """
        return run_reconcile(
            self._session, resolve_token(self._session, token), bars, previous_path=previous,
            since_block=since_block, at_block=at_block, html_path=html,
        )  # fmt: skip

    def drill(
        self,
        playbook: str | Path,
        *,
        vault: str | None = None,
        live: bool = False,
        fork_url: str | None = None,
        fork_block: int | None = None,
        params: Mapping[str, str] | None = None,
        out: str | Path | None = None,
    ) -> DrillReport:
        """Rehearse an incident from a YAML playbook (``custody drill run``).

        By default the drill runs on a snapshot of the workspace's chain in a scratch workspace and leaves
        nothing changed; ``live`` keeps the result; ``fork_url`` runs on a throw-away Anvil fork.

        Args:
            playbook: the playbook file (``playbooks/*.yaml``).
            vault: rehearse on this existing vault (replaces the playbook's subject vault).
            live: run on the workspace's chain and keep the result.
            fork_url: run on an Anvil fork of this RPC instead.
            fork_block: fork at this block [latest].
            params: overrides of the playbook's parameters.
            out: report folder [``<home>/drills/<time>-<name>-<run>``].

        Returns:
            The report: ``passed``, ``data`` (steps, expectations, diffs) and the JSON/HTML paths.

        Raises:
            PlaybookError: the playbook is unreadable or invalid (file:line:field problems).
            DrillError: the drill cannot run (chain mode, setup, unknown vault alias).
        """
        options = DrillOptions(
            vault=vault, live=live, fork_url=fork_url, fork_block=fork_block, params=dict(params or {}),
            out=Path(out) if out else None, sender=self._session.sender_uri, attester=self._session.attester_uri,
        )  # fmt: skip
        chain = None if fork_url else self._session.chain
        return run_drill(self._session.workspace, load_playbook(playbook), options, chain=chain)


class Audit:
    """The workspace's tamper-evident audit ledger (``custody audit …``)."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def verify(
        self, *, bundle: str | Path | None = None, rpc: str | None = None, chain: bool = True,
        keys: Iterable[str] = (),
    ) -> VerifyReport:  # fmt: skip
        """Recompute the ledger's tree, check every signed head and their consistency, and the entries
        against the chain (``custody audit verify``).

        Args:
            bundle: verify this exported bundle offline instead of the workspace ledger.
            rpc: check entries against this chain [the workspace's chain; for a bundle, no chain].
            chain: with ``False``, skip the checks against the chain (workspace ledger only).
            keys: trust only heads signed by these key ids.

        Returns:
            The report: ``verdict`` (``ok``, ``tampered``, ``chain_mismatch``), ``exit_code`` (0, 2, 3),
            ``first_bad_sequence`` and every problem found. Tampering is reported, not raised.

        Raises:
            BundleError: the bundle cannot be read.
            AuditError: the ledger cannot be read.
        """
        session = self._workspace.session
        checked = connect(rpc) if rpc is not None else (session.chain if bundle is None and chain else None)
        return audit_service.verify(
            store=None if bundle else session.store, bundle=bundle, chain=checked, keys=list(keys)
        )

    def export(self, fmt: str, out: str | Path | None = None) -> dict[str, Any]:
        """Export the ledger (``custody audit export``).

        Args:
            fmt: ``jsonl`` or ``csv`` (redacted), ``html`` (a report) or ``bundle`` (verifiable tar.gz).
            out: output file [jsonl/csv: returned as ``text``; html and bundle need a file].

        Returns:
            ``format``, ``path`` (or ``text``) and counts.

        Raises:
            AuditError: unknown format, or html/bundle without ``out``.
        """
        return audit_service.export(self._workspace.session.store, fmt, out)

    def head(self, *, sign: bool = True) -> SignedHead | None:
        """The latest signed tree head; with ``sign``, a new one first when the ledger grew since.

        Args:
            sign: sign a new head when the latest does not cover the whole ledger.

        Returns:
            The head (size, root, time, key id, signature), or ``None`` for an empty ledger.

        Raises:
            LedgerKeyError: the ledger signing key is missing, unreadable or of the wrong kind.
        """
        session = self._workspace.session
        return audit_service.head(session.store, lambda: audit_service.ledger_key(session.workspace), sign=sign)

    def anchor(self, *, method: str = "ledger_anchor") -> Anchor:
        """Publish the current signed tree head on chain (``custody audit anchor``).

        Args:
            method: ``ledger_anchor`` (LedgerAnchor.anchor event) or ``eas_timestamp`` (EAS timestamp).

        Returns:
            The anchor: head, transaction hash, block and contract.

        Raises:
            AuditError: the ledger is empty.
            TransactionFailed: the anchoring transaction reverted.
        """
        return audit_service.anchor(self._workspace.session, method=method)


class Attestations:
    """Attestation badges on the Ethereum Attestation Service (``custody attest …``)."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    def _attester(self, attester: str | Signer | None) -> Signer:
        session = self._workspace.session
        if attester is not None:
            return session.signer(attester) if isinstance(attester, str) else attester
        opened = session.attester()
        if opened is None:
            raise InputError("name the attester key: attester=URI, custody.open(attester=URI) or $CUSTODY_ATTESTER")
        return opened

    def issue(
        self,
        step: str,
        *,
        subject: str,
        fields: Mapping[str, str],
        vault: str | None = None,
        ref_uid: str | None = None,
        expiration: int = 0,
        attester: str | Signer | None = None,
    ) -> badges.Badge:
        """Attest one custody step on chain (``custody attest issue``).

        Args:
            step: the step's schema name (``kyc``, ``approval``, ``execution``, ``reconciliation``, …).
            subject: the badge's recipient (a signer, a vault, a token).
            fields: the schema's fields as text (``custody attest schemas`` lists them).
            vault: the vault the step belongs to (id, name or address); fills a ``vault`` field.
            ref_uid: an earlier badge this one refers to.
            expiration: unix time the badge expires at [never].
            attester: the attester's signer [the workspace's attester].

        Returns:
            The badge as read back from EAS (uid, attester, transaction).

        Raises:
            InputError: no attester, or a field is missing or malformed.
            AttestationError: EAS or the schema registry refused.
        """
        session = self._workspace.session
        given = dict(fields)
        if vault is not None and "vault" not in given:
            given["vault"] = self._workspace.vault(vault).safe
        return badges.issue(
            session, step, attester=self._attester(attester), recipient=subject,
            fields=badges.coerce_fields(attestation_step(step), given),
            ref_uid=badges.parse_uid(ref_uid, "ref_uid") if ref_uid else badges.ZERO32, expiration=expiration,
        )  # fmt: skip

    def backfill(self, vault: str | int) -> list[badges.Badge]:
        """Issue the badges the vault's template asks for that its recorded steps lack, attested by the
        workspace's attester (``custody.open(attester=URI)`` or ``$CUSTODY_ATTESTER``).

        Args:
            vault: the vault (id, name or address).

        Returns:
            The badges issued (empty when nothing was missing).

        Raises:
            UnknownVault: no such vault.
            InputError: the workspace has no attester.
        """
        self._attester(None)
        return attest_auto.backfill(self._workspace.session, str(vault))

    def verify_vault(
        self, vault: str | int, *, templates: Iterable[str | Path] = (), from_block: int | None = None
    ) -> AttestReport:
        """Check every badge about a vault against the chain and its template, and list its unbadged steps.

        Args:
            vault: the vault (id, name or address).
            templates: templates the vault used (auditors without this workspace).
            from_block: scan chain events from this block [vault creation].

        Returns:
            The report: ``ok``, one check per badge, the steps missing a badge, other problems.

        Raises:
            UnknownVault: no such vault.
            AttestationError: EAS is not deployed on this chain.
        """
        safe = self._workspace.vault(vault).safe
        verifier = Verifier(self._workspace.session, templates=[str(t) for t in templates], from_block=from_block)
        return verifier.verify_vault(safe)
