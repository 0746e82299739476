"""A session binds one workspace, one chain and the account that pays gas; services take a Session."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from custody.binding import check_binding, record_binding
from custody.chain.connection import Chain
from custody.chain.transactions import Receipt, send_transaction
from custody.contracts.deploy import contract
from custody.contracts.errors import decode_revert
from custody.contracts.infra import Infrastructure, ensure_infrastructure, load_infrastructure
from custody.exceptions import CustodyError, DeploymentError, SignerUriError
from custody.signers.base import Signer
from custody.signers.registry import SignerContext, open_signer
from custody.store import Store
from custody.workspace import Workspace

log = logging.getLogger("custody")

SENDER_ENV = "CUSTODY_SENDER"
ATTESTER_ENV = "CUSTODY_ATTESTER"


@dataclass(eq=False)  # a session is itself (identity): domains key their per-session state by it, weakly
class Session:
    workspace: Workspace
    chain: Chain
    sender_uri: str | None = None
    signer_context: SignerContext | None = None
    attester_uri: str | None = None
    _sender: Signer | None = field(default=None, repr=False)
    _infra: Infrastructure | None = field(default=None, repr=False)
    _opened: list[Any] = field(default_factory=list, repr=False)  # signers to close (HSM sessions, device links)
    _attester: Signer | None = field(default=None, repr=False)
    _bound: bool = field(default=False, repr=False)  # checked against the workspace's chain identity at open

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        rpc: str | None = None,
        sender: str | None = None,
        attester: str | None = None,
        autostart: bool = True,
    ) -> Session:
        """Open the workspace at ``home`` on its chain (or ``rpc``): refused with :class:`ForeignChain`, before
        anything is written, when the endpoint is not the chain the workspace recorded for that chain id."""
        workspace = Workspace(home)
        try:
            chain, _started = workspace.connect(rpc, autostart=autostart)
            return cls.bound(workspace, chain, sender_uri=sender, attester_uri=attester)
        except BaseException:
            workspace.close()
            raise

    @classmethod
    def bound(cls, workspace: Workspace, chain: Chain, **options: Any) -> Session:
        """A session on ``chain`` once it is proven to be this workspace's chain (genesis hash and anchored
        blocks, :mod:`custody.binding`); raises :class:`ForeignChain` otherwise, having written nothing.
        :meth:`close` records the chain identity (first contact) and anchors the blocks of new records."""
        check_binding(chain, workspace.store, where=str(workspace.home))
        return cls(workspace=workspace, chain=chain, _bound=True, **options)

    @property
    def store(self) -> Store:
        return self.workspace.store

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def signers(self) -> SignerContext:
        if self.signer_context is None:
            self.signer_context = SignerContext(keystore_dir=self.workspace.keystore_dir)
        return self.signer_context

    def signer(self, uri: str) -> Signer:
        signer = open_signer(uri, self.signers())
        self._opened.append(signer)
        return signer

    @property
    def sender(self) -> Signer:
        """The account that pays gas: --sender, $CUSTODY_SENDER, or anvil:0 on a local Anvil."""
        if self._sender is None:
            uri = self.sender_uri or os.environ.get(SENDER_ENV)
            if uri is None:
                if not self.chain.is_anvil:
                    raise SignerUriError(
                        f"chain {self.chain_id} is not a local Anvil: name the account that pays gas with "
                        f"--sender URI or ${SENDER_ENV}"
                    )
                uri = "anvil:0"
            self._sender = self.signer(uri)
        return self._sender

    def attester(self) -> Signer | None:
        """The operator's attester key for automatic badges: --attester / $CUSTODY_ATTESTER, else none."""
        if self._attester is None:
            uri = self.attester_uri or os.environ.get(ATTESTER_ENV)
            if not uri:
                return None
            self._attester = self.signer(uri)
        return self._attester

    def infrastructure(self, *, deploy: bool | None = None) -> Infrastructure:
        """The chain's custody infrastructure; deployed automatically on a local Anvil."""
        if self._infra is None:
            try:
                self._infra = load_infrastructure(self.chain, self.store)
            except DeploymentError:
                if deploy is False or (deploy is None and not self.chain.is_anvil):
                    raise
                self._infra, _ = ensure_infrastructure(self.chain, self.sender, self.store)
        return self._infra

    def contract(self, name: str, address: str) -> Any:
        return contract(self.chain, name, address)

    def send(
        self, *, to: str | None, data: bytes = b"", value: int = 0, what: str, gas: int | None = None, **kwargs: Any
    ) -> Receipt:
        return send_transaction(
            self.chain, self.sender, to=to, data=data, value=value, gas=gas, what=what, decoder=decode_revert, **kwargs
        )

    def close(self) -> None:
        if self._bound:
            try:
                record_binding(self.chain, self.store)
            except CustodyError as exc:
                log.warning("could not record the chain identity: %s", exc)
        for signer in self._opened:
            close = getattr(signer, "close", None)
            if close is not None:
                close()
        self._opened.clear()
        self.workspace.close()
