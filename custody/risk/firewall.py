"""Deterministic firewall rules: each looks at the transaction and its context and names what it saw.

Severities are defaults; a template's ``risk.rules`` may raise or lower them per reason code.
"""

from __future__ import annotations

from typing import Any

from custody.risk.calls import transfers, walk
from custody.risk.inputs import RiskInputs
from custody.risk.verdict import Reason, Severity
from custody.types import ZERO_ADDRESS

RULES_VERSION = "firewall-1"
CONFIG_KINDS = ("owners", "threshold", "modules", "guard", "fallback_handler", "timelock")
UNLIMITED = 2**255  # an allowance this large never runs out in practice
LAYER = "firewall"

DEFAULT_SEVERITY = {
    "hash_mismatch": Severity.DENY,
    "delegatecall": Severity.DENY,
    "config_change": Severity.DENY,
    "config_change_in_multisend": Severity.DENY,
    "config_change_via_timelock": Severity.INFO,
    "gas_refund": Severity.DENY,
    "calldata_to_eoa": Severity.DENY,
    "token_call_to_non_contract": Severity.DENY,
    "unlimited_approval": Severity.WARN,
    "unlisted_approval": Severity.WARN,
    "nonce_duplicate": Severity.WARN,
    "nonce_gap": Severity.WARN,
    "proposer_not_owner": Severity.WARN,
    "proposer_unverified": Severity.INFO,
    "first_time_destination": Severity.WARN,
    "first_time_listed_destination": Severity.INFO,
    "message_signing": Severity.WARN,
    "unrecognised_call": Severity.INFO,
}


def _reason(code: str, message: str, **facts: Any) -> Reason:
    return Reason(code, LAYER, DEFAULT_SEVERITY[code], message, facts)


def _hashes(inputs: RiskInputs) -> list[Reason]:
    local = inputs.safe_tx.safe_tx_hash
    found = []
    for what, supplied in (("supplied", inputs.supplied_hash), ("on-chain", inputs.onchain_hash)):
        if supplied is not None and supplied != local:
            found.append(
                _reason(
                    "hash_mismatch",
                    f"the {what} safeTxHash 0x{supplied.hex()} differs from the recomputed one",
                    which=what,
                    supplied="0x" + supplied.hex(),
                    recomputed="0x" + local.hex(),
                )
            )
    return found


def _calls(inputs: RiskInputs) -> list[Reason]:
    found = []
    known = {a.lower() for a in inputs.known}
    for located in walk(inputs.decoded):
        call = located.call
        where = "/".join(located.path) or "top level"
        if call.operation == "DELEGATECALL" and "delegatecall" in call.risk_kinds:
            found.append(_reason("delegatecall", f"DELEGATECALL to {call.to} ({where})", to=str(call.to), where=where))
        config = [k for k in call.risk_kinds if k in CONFIG_KINDS] if call.kind in ("safe_config", "timelock") else []
        if config and not call.calls:
            if located.in_timelock:
                code = "config_change_via_timelock"
            elif located.in_multisend:
                code = "config_change_in_multisend"
            else:
                code = "config_change"
            found.append(
                _reason(
                    code,
                    f"{call.function} changes {', '.join(config)} ({where})",
                    function=str(call.function),
                    kinds=",".join(config),
                    where=where,
                )
            )
        if call.function in ("approve", "increaseAllowance") and call.kind == "erc20" and not located.in_timelock:
            amount = int(call.amount or 0)
            spender = str(call.recipient)
            if amount >= UNLIMITED:
                found.append(_reason("unlimited_approval", f"unlimited approval for {spender}", spender=spender))
            if spender.lower() not in known:
                found.append(
                    _reason(
                        "unlisted_approval",
                        f"approval for {spender}, not a known counterparty",
                        spender=spender,
                        amount=str(amount),
                    )
                )
        if call.function == "approveMessage":
            found.append(
                _reason("message_signing", "asks the vault to sign an EIP-712 message (ERC-1271)", where=where)
            )
        if call.kind == "contract_call" and not call.calls:
            found.append(_reason("unrecognised_call", f"unrecognised call to {call.to}", to=str(call.to)))
        if located.in_timelock or call.to is None:
            continue
        target = str(call.to)
        code_known = inputs.has_code.get(target)
        if call.kind == "erc20" and code_known is False:
            found.append(_reason("token_call_to_non_contract", f"token call to {target}, which has no code", to=target))
        elif call.kind not in ("eth_transfer", "multisend") and code_known is False:
            found.append(_reason("calldata_to_eoa", f"calldata sent to {target}, an account without code", to=target))
    return found


def _gas_refund(inputs: RiskInputs) -> list[Reason]:
    tx = inputs.safe_tx
    if tx.gas_price or tx.gas_token != ZERO_ADDRESS or tx.refund_receiver != ZERO_ADDRESS:
        return [
            _reason(
                "gas_refund",
                "gas-refund parameters are set: the vault would pay a refund",
                gas_price=str(tx.gas_price),
                gas_token=tx.gas_token,
                refund_receiver=tx.refund_receiver,
            )
        ]
    return []


def _nonces(inputs: RiskInputs) -> list[Reason]:
    nonce = inputs.safe_tx.nonce
    queued = set(inputs.queued_nonces)
    if nonce in queued:
        return [_reason("nonce_duplicate", f"another open proposal uses nonce {nonce}", nonce=nonce)]
    missing = [n for n in range(inputs.onchain_nonce, nonce) if n not in queued]
    if missing:
        return [
            _reason(
                "nonce_gap",
                f"nonce {nonce} leaves {len(missing)} nonce(s) without a proposal (from {missing[0]})",
                nonce=nonce,
                first_missing=missing[0],
            )
        ]
    return []


def _proposer(inputs: RiskInputs) -> list[Reason]:
    text = inputs.proposer.strip()
    candidate = text.rsplit(":", 1)[-1] if text else ""
    if len(candidate) == 42 and candidate.lower().startswith("0x"):
        allowed = {a.lower() for a in (*inputs.owners, *inputs.settings.delegates)}
        if candidate.lower() not in allowed:
            return [
                _reason(
                    "proposer_not_owner", f"proposer {candidate} is neither an owner nor a delegate", proposer=candidate
                )
            ]
        return []
    return [_reason("proposer_unverified", "the proposer is not identified by an address", named=bool(text))]


def _destinations(inputs: RiskInputs) -> list[Reason]:
    found = []
    past = {d.lower() for d in inputs.past_destinations}
    known = {a.lower() for a in inputs.known}
    for transfer in transfers(inputs.decoded):
        destination = transfer.destination
        if destination.lower() in past or destination.lower() == inputs.safe_tx.safe.lower():
            continue
        if destination.lower() in known:
            found.append(
                _reason(
                    "first_time_listed_destination", f"first transfer to listed {destination}", destination=destination
                )
            )
        else:
            found.append(
                _reason(
                    "first_time_destination",
                    f"{destination} has no history with this vault and is not a known counterparty",
                    destination=destination,
                )
            )
    return found


def check(inputs: RiskInputs) -> list[Reason]:
    return [
        *_hashes(inputs),
        *_calls(inputs),
        *_gas_refund(inputs),
        *_nonces(inputs),
        *_proposer(inputs),
        *_destinations(inputs),
    ]
