"""Clear signing: the risk kinds of a Safe transaction, and the rule that risky payloads need an explicit
``--i-understand KIND`` for each kind before anyone signs them."""

from __future__ import annotations

from collections.abc import Iterable

from custody.exceptions import InputError, RiskNotAcknowledged
from custody.safe.safe_tx import SafeTx
from custody.types import ZERO_ADDRESS
from custody.vault.decode import RISK_KINDS, DecodedCall


def risk_kinds(safe_tx: SafeTx, decoded: DecodedCall) -> list[str]:
    """Every risk kind of the transaction: the decoded call's (inner calls included) and the gas refund."""
    kinds = list(decoded.risk_kinds)
    if safe_tx.gas_price != 0:
        kinds.append("gas_refund")
    return list(dict.fromkeys(kinds))


def gas_refund_risk(safe_tx: SafeTx) -> str | None:
    if safe_tx.gas_price == 0:
        return None
    receiver = "tx.origin (whoever executes)" if safe_tx.refund_receiver == ZERO_ADDRESS else safe_tx.refund_receiver
    token = "ETH" if safe_tx.gas_token == ZERO_ADDRESS else safe_tx.gas_token
    return f"{RISK_KINDS['gas_refund']}: gasPrice {safe_tx.gas_price} in {token} to {receiver}"


def require_acknowledged(kinds: Iterable[str], acknowledged: Iterable[str], *, what: str) -> None:
    """Refuse unless every risk kind is named in ``acknowledged`` (unknown words are an input error)."""
    given = {a.strip().lower() for a in acknowledged}
    unknown = sorted(given - set(RISK_KINDS))
    if unknown:
        raise InputError(f"--i-understand {unknown[0]} is not a risk kind (known: {', '.join(sorted(RISK_KINDS))})")
    missing = [k for k in kinds if k not in given]
    if missing:
        flags = " ".join(f"--i-understand {k}" for k in missing)
        raise RiskNotAcknowledged(
            f"{what} is risky ({', '.join(missing)}); review it and re-run with {flags} to sign anyway",
            risks=missing,
        )
