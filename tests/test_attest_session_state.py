"""The attest domain keeps its per-session state itself (issue 13): the EAS context is made once per
session, the "no attester key" warning is said once per session, vault and step, and neither keeps a
session alive once it is dropped."""

from __future__ import annotations

import gc
import logging
import weakref

from custody.attest import auto, badges
from custody.session import Session
from custody.signers.local import anvil_address
from tests import attest_helpers

vault = attest_helpers.vault  # the attested-template vault fixture (emits approval badges)

NO_ATTESTER = "no attester key is configured"
TX_HASH = "0x" + "ab" * 32


def _sibling(session: Session) -> Session:
    """Another session on the same workspace and chain."""
    return Session(workspace=session.workspace, chain=session.chain)


def test_the_eas_context_is_made_once_per_session(session) -> None:
    ctx = badges.context(session)
    assert badges.context(session) is ctx
    other = _sibling(session)
    assert badges.context(other) is not ctx and badges.context(other).address == ctx.address
    alive = weakref.ref(other)
    del other
    gc.collect()
    assert alive() is None


def test_no_attester_is_said_once_per_session_vault_and_step(session, vault, caplog) -> None:
    def warnings(s: Session) -> int:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="custody.attest.auto"):
            assert auto.after_approval(s, vault.safe, TX_HASH, anvil_address(1)) is None
        return caplog.text.count(NO_ATTESTER)

    assert warnings(session) == 1
    assert warnings(session) == 0  # said already in this session
    other = _sibling(session)
    assert warnings(other) == 1  # a new session says it again
    alive = weakref.ref(other)
    del other
    gc.collect()
    assert alive() is None
