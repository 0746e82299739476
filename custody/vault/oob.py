"""Out-of-band (second-channel) confirmation of large or risky transfers.

Where a vault's policy asks — an asset's ``out_of_band_above`` (the amount moved is at or above it) or
``out_of_band.risky_operations`` (the payload has a risk kind) — ``tx execute`` refuses until someone
*other than the proposer* has confirmed the exact safeTxHash through a second channel:

* **TOTP** (``tx confirm ID --totp CODE --confirmer NAME``): each confirmer enrolls once
  (``oob enroll NAME``) and gets a TOTP secret, shown once as an ``otpauth://`` URI for an
  authenticator app and kept sealed in ``<workspace>/oob/NAME.totp.sealed`` (scrypt + AES-GCM under the
  out-of-band passphrase, :mod:`custody.vault.sealed`; never in plaintext). A code is accepted once.
* **Printed code** (``tx challenge ID --confirmer NAME`` then ``tx confirm ID --code CODE --confirmer
  NAME``): an 8-digit HMAC-SHA256 code bound to the chain id, the safeTxHash, the confirmer and a
  fresh salt, keyed by a workspace secret (``<workspace>/oob/challenge.key.sealed``, sealed the same way).
  Read out over a phone call; valid for 15 minutes and 5 attempts, single use.

Dual control: the proposer is a known identity (a signer URI, recorded with its address, or an enrolled
confirmer). A confirmer may not be the proposer, hold the key that proposed (``oob enroll NAME --key ADDRESS``),
or be excluded by the vault's template (``out_of_band.exclude``: addresses or confirmer names).

Every confirmation is recorded (who, how, when, which safeTxHash, why it was needed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp
import sqlalchemy as sa

from custody import events
from custody.audit import record as audit
from custody.exceptions import ConfirmationError, ConfirmationRequired, InputError
from custody.session import Session
from custody.store import oob_challenges, oob_confirmations, oob_confirmer_keys, oob_confirmers, utcnow
from custody.types import format_amount, parse_address
from custody.vault.clear import risk_kinds
from custody.vault.decode import DecodedCall, decode_safe_call
from custody.vault.sealed import oob_passphrase, unseal, write_sealed
from custody.vault.service import get_vault
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.vault.proposals import Proposal

CHALLENGE_TTL = dt.timedelta(minutes=15)
MAX_ATTEMPTS = 5
CODE_DIGITS = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Requirement:
    """Whether the vault's policy asks for an out-of-band confirmation of this proposal, and why."""

    reasons: tuple[str, ...]

    @property
    def required(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class Confirmation:
    confirmer: str
    method: str
    safe_tx_hash: str
    reason: str
    confirmed_at: dt.datetime


def _moved(call: DecodedCall, totals: dict[str | None, int]) -> None:
    """Amounts moved per asset (None = ETH) by a call and the calls inside it (batches, timelock operations)."""
    if call.kind == "eth_transfer":
        totals[None] = totals.get(None, 0) + int(call.amount or 0)
    elif call.kind == "erc20" and call.function in ("transfer", "transferFrom") and call.token is not None:
        totals[call.token.address] = totals.get(call.token.address, 0) + int(call.amount or 0)
    for inner in call.calls:
        _moved(inner, totals)


def requirement(session: Session, proposal: Proposal) -> Requirement:
    """Evaluate the vault's out-of-band rules against the proposal (amounts per asset, risk kinds)."""
    safe_tx = proposal.safe_tx
    policy = get_vault(session, proposal.vault_id).policy()
    decoded = decode_safe_call(
        session.chain, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe
    )
    totals: dict[str | None, int] = {}
    _moved(decoded, totals)
    if decoded.kind != "eth_transfer" and safe_tx.value:
        totals[None] = totals.get(None, 0) + safe_tx.value  # ETH sent along with a contract call
    reasons = []
    for token, amount in totals.items():
        asset = policy.asset(token)
        if asset is not None and asset.out_of_band_above is not None and amount >= asset.out_of_band_above:
            reasons.append(
                f"it moves {format_amount(amount, asset.decimals)} {asset.symbol}, at or above the policy's "
                f"out-of-band threshold of {format_amount(asset.out_of_band_above, asset.decimals)} {asset.symbol}"
            )
    if policy.out_of_band is not None and policy.out_of_band.risky_operations:
        kinds = risk_kinds(safe_tx, decoded)
        if kinds:
            reasons.append(f"it is a risky operation ({', '.join(kinds)})")
    return Requirement(tuple(reasons))


# -- confirmers --------------------------------------------------------------------------------
def _oob_dir(workspace: Workspace) -> Path:
    folder = workspace.home / "oob"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"confirmer name {name!r} must be 1-64 letters, digits, '_', '.', '@', '-'")
    return name


def enroll(workspace: Workspace, name: str, *, keys: tuple[str, ...] = (), passphrase: str | None = None) -> str:
    """Register confirmer ``name`` (holding signing ``keys``) with a new TOTP secret, sealed at rest; returns the
    otpauth URI (show it once)."""
    _check_name(name)
    addresses = sorted({parse_address(k, what="confirmer key") for k in keys})
    path = _oob_dir(workspace) / f"{name}.totp.sealed"
    with workspace.store.begin() as conn:
        exists = conn.execute(sa.select(oob_confirmers.c.name).where(oob_confirmers.c.name == name)).first()
        if exists is not None or path.exists():
            raise ConfirmationError(f"confirmer {name} is enrolled already; each secret is shown only once")
        secret = pyotp.random_base32()
        write_sealed(path, secret.encode(), passphrase or oob_passphrase(), f"custody-oob-totp|{name}")
        conn.execute(oob_confirmers.insert().values(name=name, totp_last_step=None, enrolled_at=utcnow()))
        for address in addresses:
            conn.execute(oob_confirmer_keys.insert().values(name=name, address=address))
        audit.confirmer_enrolled(conn, workspace.store, name)
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="custody")


def confirmer_keys(workspace: Workspace, name: str) -> set[str]:
    with workspace.store.connect() as conn:
        rows = conn.execute(sa.select(oob_confirmer_keys.c.address).where(oob_confirmer_keys.c.name == name))
        return set(rows.scalars())


def is_enrolled(workspace: Workspace, name: str) -> bool:
    with workspace.store.connect() as conn:
        return conn.execute(sa.select(oob_confirmers.c.name).where(oob_confirmers.c.name == name)).first() is not None


def _confirmer(session: Session, name: str) -> None:
    with session.store.connect() as conn:
        found = conn.execute(sa.select(oob_confirmers.c.name).where(oob_confirmers.c.name == name)).first()
    if found is None:
        raise ConfirmationError(f"{name} is not an enrolled confirmer; enroll with `custody oob enroll {name}`")


def _totp(session: Session, name: str, passphrase: str | None) -> pyotp.TOTP:
    path = _oob_dir(session.workspace) / f"{name}.totp.sealed"
    try:
        sealed = path.read_bytes()
    except OSError as exc:
        raise ConfirmationError(f"the sealed TOTP secret of confirmer {name} is missing from {path.parent}") from exc
    secret = unseal(sealed, passphrase or oob_passphrase(), f"custody-oob-totp|{name}", what=f"{name}'s TOTP secret")
    return pyotp.TOTP(secret.decode())


def list_confirmers(workspace: Workspace) -> list[str]:
    with workspace.store.connect() as conn:
        return list(conn.execute(sa.select(oob_confirmers.c.name).order_by(oob_confirmers.c.name)).scalars())


# -- confirming --------------------------------------------------------------------------------
_ADDRESS_IN_TEXT = re.compile(r"0x[0-9a-fA-F]{40}")


def proposer_address(proposal: Proposal) -> str | None:
    """The key that proposed (signer-URI proposers are recorded as ``URI (ADDRESS)``), if any."""
    found = _ADDRESS_IN_TEXT.search(proposal.proposer or "")
    return None if found is None else parse_address(found.group(0))


def _check_people(session: Session, proposal: Proposal, confirmer: str) -> None:
    """Dual control: ``confirmer`` is neither the proposer, nor holds the proposing key, nor is excluded."""
    proposer = (proposal.proposer or "").strip()
    if not proposer:
        raise ConfirmationError(
            f"proposal {proposal.id} has no recorded proposer, so a different person cannot be verified; "
            "re-propose it with --proposer NAME"
        )
    if proposer.lower() == confirmer.lower():
        raise ConfirmationError(f"{confirmer} proposed proposal {proposal.id} and cannot also confirm it out of band")
    key = proposer_address(proposal)
    if key is None and not is_enrolled(session.workspace, proposer):
        raise ConfirmationError(
            f"proposal {proposal.id} was proposed by {proposer!r}, which is neither a signer nor an enrolled person, "
            "so a different person cannot be verified; re-propose it with --proposer URI|NAME"
        )
    keys = confirmer_keys(session.workspace, confirmer)
    if key is not None and key in keys:
        raise ConfirmationError(
            f"{confirmer} holds key {key}, which proposed proposal {proposal.id}, and cannot also confirm it out of band"
        )
    policy = get_vault(session, proposal.vault_id).policy()
    excluded = policy.out_of_band.exclude if policy.out_of_band is not None else ()
    for entry in excluded:
        if entry.lower() == confirmer.lower() or entry.lower() in {k.lower() for k in keys}:
            raise ConfirmationError(
                f"{confirmer} may not confirm transfers of vault {proposal.vault_id} out of band: its template "
                f"excludes {entry} (out_of_band.exclude)"
            )


def _allowed(session: Session, proposal: Proposal, confirmer: str) -> bool:
    try:
        _check_people(session, proposal, confirmer)
    except ConfirmationError:
        return False
    return True


def _record(session: Session, proposal: Proposal, confirmer: str, method: str) -> Confirmation:
    reason = "; ".join(requirement(session, proposal).reasons) or "not required by policy"
    row = Confirmation(confirmer, method, proposal.safe_tx_hash, reason, utcnow())
    with session.store.begin() as conn:
        done = conn.execute(
            sa.select(oob_confirmations.c.confirmer).where(
                oob_confirmations.c.proposal_id == proposal.id, oob_confirmations.c.confirmer == confirmer
            )
        ).first()
        if done is None:
            conn.execute(
                oob_confirmations.insert().values(
                    proposal_id=proposal.id,
                    confirmer=confirmer,
                    safe_tx_hash=row.safe_tx_hash,
                    method=method,
                    reason=reason,
                    confirmed_at=row.confirmed_at,
                )
            )
            audit.out_of_band_confirmed(conn, session, proposal, confirmer, method, reason)
    if done is None:
        events.publish(
            events.ConfirmationRecorded(session, proposal.safe_tx.safe, proposal.safe_tx_hash, confirmer, method)
        )
    return row


def _code(session: Session, proposal: Proposal, confirmer: str, salt: str, passphrase: str | None) -> str:
    key_file = _oob_dir(session.workspace) / "challenge.key.sealed"
    passphrase = passphrase or oob_passphrase()
    if not key_file.exists():
        try:
            write_sealed(key_file, secrets.token_bytes(32), passphrase, "custody-oob-challenge-key")
        except FileExistsError:
            pass
    key = unseal(key_file.read_bytes(), passphrase, "custody-oob-challenge-key", what="the challenge key")
    message = f"custody-oob-v1|{proposal.safe_tx.chain_id}|{proposal.safe_tx_hash}|{confirmer}|{salt}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def issue_challenge(
    session: Session, proposal: Proposal, confirmer: str, *, issued_by: str, passphrase: str | None = None
) -> tuple[str, dt.datetime]:
    """A fresh single-use code for ``confirmer``, bound to the proposal's safeTxHash; returns (code, expiry)."""
    _check_name(confirmer)
    _confirmer(session, confirmer)
    _check_people(session, proposal, confirmer)
    salt = "0x" + secrets.token_hex(16)
    now = utcnow()
    with session.store.begin() as conn:
        conn.execute(
            oob_challenges.update()
            .where(
                oob_challenges.c.proposal_id == proposal.id,
                oob_challenges.c.confirmer == confirmer,
                oob_challenges.c.state == "open",
            )
            .values(state="burnt")
        )
        conn.execute(
            oob_challenges.insert().values(
                proposal_id=proposal.id,
                safe_tx_hash=proposal.safe_tx_hash,
                confirmer=confirmer,
                salt=salt,
                issued_by=issued_by[:128],
                issued_at=now,
                expires_at=now + CHALLENGE_TTL,
                attempts=0,
                state="open",
            )
        )
    return _code(session, proposal, confirmer, salt, passphrase), now + CHALLENGE_TTL


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def confirm_with_code(
    session: Session, proposal: Proposal, confirmer: str, code: str, *, passphrase: str | None = None
) -> Confirmation:
    _check_name(confirmer)
    _confirmer(session, confirmer)
    _check_people(session, proposal, confirmer)
    with session.store.connect() as conn:
        row = (
            conn.execute(
                sa.select(oob_challenges)
                .where(
                    oob_challenges.c.proposal_id == proposal.id,
                    oob_challenges.c.confirmer == confirmer,
                    oob_challenges.c.state == "open",
                )
                .order_by(oob_challenges.c.id.desc())
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ConfirmationError(
            f"no open challenge for {confirmer} on proposal {proposal.id}; issue one with "
            f"`custody tx challenge {proposal.id} --confirmer {confirmer}`"
        )
    if row["safe_tx_hash"] != proposal.safe_tx_hash:
        raise ConfirmationError(f"the challenge was issued for another safeTxHash ({row['safe_tx_hash']})")
    if _aware(row["expires_at"]) < utcnow():
        _set_challenge(session, row["id"], state="burnt")
        raise ConfirmationError(f"the challenge for {confirmer} on proposal {proposal.id} expired; issue a new one")
    expected = _code(session, proposal, confirmer, row["salt"], passphrase)
    if not hmac.compare_digest(expected, code.strip()):
        attempts = row["attempts"] + 1
        burnt = attempts >= MAX_ATTEMPTS
        _set_challenge(session, row["id"], attempts=attempts, state="burnt" if burnt else "open")
        left = "the challenge is now void; issue a new one" if burnt else f"{MAX_ATTEMPTS - attempts} attempt(s) left"
        raise ConfirmationError(f"wrong confirmation code for proposal {proposal.id}; {left}")
    _set_challenge(session, row["id"], state="used")
    return _record(session, proposal, confirmer, "code")


def _set_challenge(session: Session, challenge_id: int, **values: Any) -> None:
    with session.store.begin() as conn:
        conn.execute(oob_challenges.update().where(oob_challenges.c.id == challenge_id).values(**values))


def confirm_with_totp(
    session: Session,
    proposal: Proposal,
    confirmer: str,
    code: str,
    *,
    now: float | None = None,
    passphrase: str | None = None,
) -> Confirmation:
    _check_name(confirmer)
    _confirmer(session, confirmer)
    _check_people(session, proposal, confirmer)
    totp = _totp(session, confirmer, passphrase)
    at = time.time() if now is None else now
    step = int(at // totp.interval)
    matched = next(
        (s for s in (step, step - 1, step + 1) if hmac.compare_digest(totp.generate_otp(s), code.strip())), None
    )
    if matched is None:
        raise ConfirmationError(f"wrong TOTP code from {confirmer} for proposal {proposal.id}")
    with session.store.begin() as conn:
        last = conn.execute(
            sa.select(oob_confirmers.c.totp_last_step).where(oob_confirmers.c.name == confirmer)
        ).scalar()
        if last is not None and matched <= last:
            raise ConfirmationError(f"this TOTP code of {confirmer} was used already; wait for the next one")
        conn.execute(oob_confirmers.update().where(oob_confirmers.c.name == confirmer).values(totp_last_step=matched))
    return _record(session, proposal, confirmer, "totp")


def confirmations(session: Session, proposal: Proposal) -> list[Confirmation]:
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(oob_confirmations)
            .where(oob_confirmations.c.proposal_id == proposal.id)
            .order_by(oob_confirmations.c.confirmed_at)
        ).mappings()
        return [
            Confirmation(r["confirmer"], r["method"], r["safe_tx_hash"], r["reason"], _aware(r["confirmed_at"]))
            for r in rows
        ]


def require_confirmation(session: Session, proposal: Proposal) -> None:
    """Refuse (before anything is sent) when policy asks for a confirmation that is not recorded."""
    needed = requirement(session, proposal)
    if not needed.required:
        return
    valid = [
        c
        for c in confirmations(session, proposal)
        if c.safe_tx_hash == proposal.safe_tx_hash and _allowed(session, proposal, c.confirmer)
    ]
    if not valid:
        raise ConfirmationRequired(
            f"proposal {proposal.id} needs an out-of-band confirmation by someone other than its proposer because "
            f"{' and '.join(needed.reasons)}; nothing was sent",
            hint=f"`custody tx confirm {proposal.id} --totp CODE --confirmer NAME`, or "
            f"`custody tx challenge {proposal.id} --confirmer NAME` and read the code to NAME",
            proposal=proposal.id,
            reasons=list(needed.reasons),
        )


def oob_view(session: Session, proposal: Proposal) -> dict[str, Any]:
    """The out-of-band part of ``tx show``: whether policy requires it, why, and who confirmed when."""
    needed = requirement(session, proposal)
    return {
        "required": needed.required,
        "reasons": list(needed.reasons),
        "confirmations": [
            {
                "confirmer": c.confirmer,
                "method": c.method,
                "safe_tx_hash": c.safe_tx_hash,
                "confirmed_at": c.confirmed_at.isoformat(),
            }
            for c in confirmations(session, proposal)
        ],
    }
