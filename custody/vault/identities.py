"""Who proposes: always a known identity, never free text.

A proposer is either a signer URI (``keystore:officer-1``, ``pkcs11:…``, ``anvil:3``), opened to learn its address
and recorded as ``URI (ADDRESS)``, or the name of an enrolled out-of-band confirmer (a person). Out-of-band
confirmation then compares people and keys (:func:`custody.vault.oob._check_people`).
"""

from __future__ import annotations

from custody.exceptions import InputError, SignerError
from custody.session import Session
from custody.vault.oob import is_enrolled


def resolve_proposer(session: Session, proposer: str, *, optional: bool = False) -> str:
    """The proposer as recorded: ``URI (ADDRESS)`` for a signer URI, the name for an enrolled person.

    ``optional``: an empty proposer stays empty (such a proposal can never be confirmed out of band)."""
    text = (proposer or "").strip()
    if not text and optional:
        return ""
    if not text:
        raise InputError("--proposer is required: a signer URI (e.g. keystore:officer-1) or an enrolled person")
    if ":" in text:
        try:
            address = session.signer(text).address
        except SignerError as exc:
            raise InputError(f"proposer {text} is not a usable signer: {exc.message}") from exc
        return f"{text} ({address})"
    if is_enrolled(session.workspace, text):
        return text
    raise InputError(
        f"proposer {text!r} is neither a signer URI nor an enrolled person",
        hint=f"use a signer URI such as keystore:NAME, or enroll the person with `custody oob enroll {text}`",
    )


PROPOSER_HELP = "Who proposes: a signer URI (e.g. keystore:officer-1) or an enrolled person (`custody oob enroll`)."
