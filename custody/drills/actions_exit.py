"""Drill actions for the emergency exit (ExitModule): sign, initiate, cancel, finalize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custody.drills.actions_vault import VAULT, sign_and_execute
from custody.drills.context import Asset, DrillContext
from custody.drills.spec import Param, action
from custody.exceptions import DrillError
from custody.types import format_amount
from custody.vault import exit as vault_exit
from custody.vault import proposals

CUSTODIAN = Param("custodian", "address", required=True, help="a pre-approved fallback custodian")


@action("sign_exit", "each actor (council member or owner) signs the exit request", VAULT, CUSTODIAN, actor="signers")
def sign_exit(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    session = ctx.session
    vault = ctx.vault(args["vault"])
    request = vault_exit.open_request(session, vault.id, ctx.address(args["custodian"]))
    for uri in actors:
        request, _added = vault_exit.sign(session, request, ctx.signer(uri))
    quorum = vault_exit.status(session, vault.id).quorum
    return {
        "request": request.id,
        "digest": request.digest,
        "signatures": len(request.signatures),
        "quorum": quorum,
        "deadline": request.deadline,
    }


@action("initiate_exit", "submit the collected exit signatures: the escrow delay starts", VAULT, CUSTODIAN)
def initiate_exit(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    session = ctx.session
    vault = ctx.vault(args["vault"])
    request, receipt = vault_exit.initiate_for(session, vault.id, ctx.address(args["custodian"]))
    status = vault_exit.status(session, vault.id)
    return {
        "request": request.id,
        "tx_hash": receipt.tx_hash,
        "gas_used": receipt.gas_used,
        "custodian": status.pending_custodian,
        "ready_at": status.ready_at,
        "escrow_delay_s": status.escrow_delay,
    }


@action(
    "cancel_exit",
    "cancel the pending exit: an owner directly, or the owners through a Safe proposal",
    VAULT,
    Param("via", "text", choices=("owner", "safe"), help="owner (default) or safe"),
    actor="signers",
)
def cancel_exit(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    session = ctx.session
    vault = ctx.vault(args["vault"])
    if str(args.get("via", "owner")) == "owner":
        if len(actors) != 1:
            raise DrillError("cancel_exit via owner takes exactly one actor (the cancelling owner)")
        receipt = vault_exit.cancel_as_owner(session, vault.id, ctx.signer(actors[0]))
        return {"via": "owner", "tx_hash": receipt.tx_hash, "gas_used": receipt.gas_used}
    target, data = vault_exit.cancel_proposal_data(session, vault.id)
    proposal = proposals.propose(
        session, vault.id, to=target, data=data, description="cancel the pending emergency exit (drill)"
    )
    return {"via": "safe", **sign_and_execute(ctx, proposal, actors)}


@action("finalize_exit", "complete the exit after the escrow delay: every listed asset goes to the custodian", VAULT)
def finalize_exit(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    session = ctx.session
    vault = ctx.vault(args["vault"])
    status = vault_exit.status(session, vault.id)
    custodian = status.pending_custodian
    assets = [Asset("ETH", None, 18)] + [ctx.asset(t, vault) for t in status.tokens]
    before = {a.symbol: (ctx.balance(vault.safe, a), ctx.balance(custodian, a) if custodian else 0) for a in assets}
    receipt = vault_exit.finalize(session, vault.id)
    swept, received, empty = {}, {}, True
    for a in assets:
        left = ctx.balance(vault.safe, a)
        gained = ctx.balance(custodian, a) - before[a.symbol][1] if custodian else 0
        swept[a.symbol] = format_amount(before[a.symbol][0] - left, a.decimals)
        received[a.symbol] = format_amount(gained, a.decimals)
        empty = empty and left == 0
    return {
        "tx_hash": receipt.tx_hash,
        "gas_used": receipt.gas_used,
        "custodian": custodian,
        "swept": swept,
        "custodian_received": received,
        "vault_empty": empty,
        "custodian_received_all": swept == received,
    }
