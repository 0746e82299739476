"""Drill actions on vaults: create, fund, transfer (propose / sign / execute), pause, unpause, rotate an
owner, change the threshold, complete timelocked operations, break a guard. All through the service layer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector_of

from custody.contracts.deploy import deploy_plain
from custody.drills.context import DrillContext
from custody.drills.spec import Param, action
from custody.exceptions import CustodyError, DrillError
from custody.policy import change
from custody.types import format_amount, parse_amount
from custody.vault import proposals, resilience, service, timelock_ops

VAULT = Param("vault", "vault", required=True, help="vault alias")
MINT = selector_of("mint(address,uint256)")


def sign_and_execute(
    ctx: DrillContext, proposal: proposals.Proposal, actors: tuple[str, ...], *, force: bool = False
) -> dict[str, Any]:
    """Each actor signs, then execute; a proposal that sent nothing is discarded on failure (its nonce is freed)."""
    session = ctx.session
    try:
        for uri in actors:
            proposals.sign(session, proposals.get_proposal(session, proposal.id), ctx.signer(uri))
        receipt = proposals.execute(session, proposals.get_proposal(session, proposal.id), force=force)
    except CustodyError:
        current = proposals.get_proposal(session, proposal.id)
        if current.state is proposals.ProposalState.PROPOSED:
            proposals.discard(session, current)
        raise
    return {
        "proposal": proposal.id,
        "safe_tx_hash": proposal.safe_tx_hash,
        "tx_hash": receipt.tx_hash,
        "block": receipt.block_number,
        "gas_used": receipt.gas_used,
    }


def create(ctx: DrillContext, alias: str, template: Path) -> dict[str, Any]:
    """Create a vault for the drill under a unique name (the drill's run tag keeps live runs apart)."""
    name = f"drill-{alias}-{ctx.run_tag}".replace("_", "-")[:64]
    record, facts = service.create_vault(ctx.session, template, name=name)
    ctx.vaults[alias] = record.id
    return {
        "vault": record.name,
        "safe": record.safe,
        "timelock": record.timelock,
        "guard": record.guard,
        "exit_module": record.exit_module,
        "tx_hash": facts["tx_hash"],
        "gas_used": facts["gas_used"],
    }


def fund_vault(ctx: DrillContext, alias: str, asset_text: str, amount: str) -> dict[str, Any]:
    """Send ETH from the operator account, or mint a demo token (local test tokens only)."""
    vault = ctx.vault(alias)
    asset = ctx.asset(asset_text, vault)
    units = parse_amount(amount, asset.decimals, symbol=asset.symbol)
    session = ctx.session
    if asset.token is None:
        receipt = session.send(to=vault.safe, value=units, what=f"funding drill vault {vault.name}")
    else:
        data = MINT + encode(["address", "uint256"], [vault.safe, units])
        receipt = session.send(to=asset.token, data=data, what=f"minting {asset.symbol} to drill vault {vault.name}")
    return {"vault": vault.name, "asset": asset.symbol, "amount": amount, "tx_hash": receipt.tx_hash}


@action(
    "create_vault",
    "create a vault from a template",
    Param("template", "text", required=True),
    Param("as", "alias", required=True, defines="vault"),
)
def create_vault(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    template = Path(str(args["template"]))
    if not template.is_absolute():
        template = (ctx.playbook_dir or Path.cwd()) / template
    return create(ctx, str(args["as"]), template)


@action(
    "fund",
    "fund a vault (ETH from the operator, demo tokens minted)",
    VAULT,
    Param("amount", "amount", required=True),
    Param("asset", "asset"),
)
def fund(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    return fund_vault(ctx, str(args["vault"]), str(args.get("asset", "ETH")), str(args["amount"]))


def _propose(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> proposals.Proposal:
    vault = ctx.vault(args["vault"])
    asset = ctx.asset(args.get("asset", "ETH"), vault)
    proposal = proposals.propose_transfer(
        ctx.session,
        vault.id,
        to=ctx.address(args["to"]),
        amount=str(args["amount"]),
        token=asset.token,
        proposer=actors[0] if actors else "drill",
        force=ctx.flag(args, "force"),
    )
    if args.get("as"):
        ctx.proposals[str(args["as"])] = proposal.id
    return proposal


TRANSFER_PARAMS = (
    VAULT,
    Param("to", "address", required=True, help="vault alias, signer URI or address"),
    Param("amount", "amount", required=True),
    Param("asset", "asset", help="ETH (default), a policy symbol or a token address"),
    Param("force", "bool", help="skip the policy pre-flight: let the chain judge"),
    Param("as", "alias", defines="proposal"),
)


@action("transfer", "propose, sign (each actor) and execute a transfer", *TRANSFER_PARAMS, actor="signers")
def transfer(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    proposal = _propose(ctx, args, ())
    return sign_and_execute(ctx, proposal, actors, force=ctx.flag(args, "force"))


@action("propose_transfer", "propose a transfer (nothing signed yet)", *TRANSFER_PARAMS, actor="optional")
def propose_transfer(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    proposal = _propose(ctx, args, actors)
    return {"proposal": proposal.id, "safe_tx_hash": proposal.safe_tx_hash, "nonce": proposal.safe_tx.nonce}


@action("sign", "each actor signs a proposal", Param("proposal", "proposal", required=True), actor="signers")
def sign(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    proposal_id = ctx.proposal_id(args["proposal"])
    added = []
    for uri in actors:
        signature, new = proposals.sign(ctx.session, proposals.get_proposal(ctx.session, proposal_id), ctx.signer(uri))
        added.append({"signer": signature.signer, "added": new})
    return {"proposal": proposal_id, "signatures": added}


@action(
    "execute",
    "execute a proposal (resumes one left executing)",
    Param("proposal", "proposal", required=True),
    Param("force", "bool"),
)
def execute(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    session = ctx.session
    proposal = proposals.get_proposal(session, ctx.proposal_id(args["proposal"]))
    resumed = proposal.state is proposals.ProposalState.EXECUTING
    journaled = proposal.exec_tx_hash
    before = ctx.proxy.counters()["broadcasts"] if ctx.proxy is not None else None
    receipt = proposals.execute(session, proposal, force=ctx.flag(args, "force"))
    data = {
        "proposal": proposal.id,
        "resumed": resumed,
        "tx_hash": receipt.tx_hash,
        "gas_used": receipt.gas_used,
        "same_transaction": (receipt.tx_hash == journaled) if resumed else None,
    }
    if before is not None and ctx.proxy is not None:
        data["rebroadcasts"] = ctx.proxy.counters()["broadcasts"] - before
    return data


@action("pause", "the owners freeze the vault now (no delay)", VAULT, actor="signers")
def pause(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    vault = ctx.vault(args["vault"])
    return sign_and_execute(ctx, resilience.pause(ctx.session, vault.id, proposer="drill"), actors)


def _scheduled(
    ctx: DrillContext,
    proposal: proposals.Proposal,
    op: timelock_ops.TimelockOp,
    actors: tuple[str, ...],
    *,
    force: bool = False,
) -> dict[str, Any]:
    data = sign_and_execute(ctx, proposal, actors, force=force)
    done = timelock_ops.get_op(ctx.session, op.op_id)
    return {
        **data,
        "operation": op.op_id,
        "kind": op.kind,
        "delay_s": op.delay,
        "ready_at": done.ready_at,
        "calls": [c.description for c in op.calls],
    }


@action("unpause", "the owners schedule lifting the freeze (timelocked)", VAULT, actor="signers")
def unpause(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    vault = ctx.vault(args["vault"])
    return _scheduled(ctx, *resilience.unpause(ctx.session, vault.id, proposer="drill"), actors)


@action(
    "rotate_owner",
    "the owners schedule swapping an owner (timelocked)",
    VAULT,
    Param("old", "address", required=True),
    Param("new", "address", required=True),
    actor="signers",
)
def rotate_owner(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    vault = ctx.vault(args["vault"])
    old, new = ctx.address(args["old"]), ctx.address(args["new"])
    proposal, op = resilience.rotate_owner(ctx.session, vault.id, old, new, ctx.workdir, proposer="drill")
    return {**_scheduled(ctx, proposal, op, actors), "old": old, "new": new}


@action(
    "set_threshold",
    "the owners schedule a new signature threshold (timelocked)",
    VAULT,
    Param("threshold", "int", required=True),
    actor="signers",
)
def set_threshold(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    vault = ctx.vault(args["vault"])
    proposal, op = resilience.change_threshold(
        ctx.session, vault.id, int(args["threshold"]), ctx.workdir, proposer="drill"
    )
    return _scheduled(ctx, proposal, op, actors)


def scheduled_op(ctx: DrillContext, vault_id: int) -> timelock_ops.TimelockOp:
    ops = [o for o in timelock_ops.list_ops(ctx.session, vault_id) if o.state is timelock_ops.OpState.SCHEDULED]
    if not ops:
        raise DrillError("the vault has no scheduled timelock operation to complete")
    return ops[-1]


@action("complete_timelock", "complete the vault's scheduled timelock operation (anyone may)", VAULT)
def complete_timelock(ctx: DrillContext, args: Mapping[str, Any], _actors: tuple[str, ...]) -> dict[str, Any]:
    vault = ctx.vault(args["vault"])
    op = scheduled_op(ctx, vault.id)
    _what, receipt = change.execute(ctx.session, op.proposal_id)
    return {"operation": op.op_id, "kind": op.kind, "tx_hash": receipt.tx_hash, "gas_used": receipt.gas_used}


@action(
    "install_broken_guard",
    "the owners try to install a guard that refuses everything (through the timelock)",
    VAULT,
    Param("force", "bool", help="skip the policy pre-flight: let the chain judge"),
    actor="signers",
)
def install_broken_guard(ctx: DrillContext, args: Mapping[str, Any], actors: tuple[str, ...]) -> dict[str, Any]:
    """All owners agree to replace the guard by one that refuses everything. The guard in office refuses to
    schedule it (a replacement must be a CustodyGuard bound to the same vault): the vault can never be
    bricked this way. The step's outcome is that refusal (expect: {error: CustodyGuardSuccessorNotRegistered})."""
    session = ctx.session
    vault = ctx.vault(args["vault"])
    bad = deploy_plain(session.chain, session.sender, "RevertingGuard", constructor_types=[], constructor_args=[])
    inner = selector_of("setGuard(address)") + encode(["address"], [bad.address])
    call = change._module_call(vault.safe, inner, "install a guard that refuses everything (drill)")
    proposal, op = timelock_ops.schedule(
        session,
        vault,
        [call],
        kind="guard",
        description="install a broken guard (drill)",
        salt_seed=b"drill-broken-guard",
        proposer="drill",
        force=ctx.flag(args, "force"),
    )
    scheduled = _scheduled(ctx, proposal, op, actors, force=ctx.flag(args, "force"))
    return {**scheduled, "guard": bad.address}


def describe_balance(ctx: DrillContext, who: str, asset_text: str) -> str:
    asset = ctx.asset(asset_text)
    return format_amount(ctx.balance(ctx.address(who), asset), asset.decimals)
