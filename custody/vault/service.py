"""Micro-vault lifecycle: create from a policy template, find, and read live state from the chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_utils import keccak, to_checksum_address
from sqlalchemy import RowMapping
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.audit import record as audit
from custody.contracts.deploy import codehash, minimal_proxy_code
from custody.exceptions import TemplateError, UnknownVault, VaultError
from custody.policy.compiled import NO_EXIT, compile_exit, compile_policy
from custody.policy.guard_code import GuardProvenance, guard_provenance
from custody.policy.onchain import GuardInfo, installed_guard, read_guard
from custody.policy.template import Policy, load_policy, load_policy_text
from custody.session import Session
from custody.store import Store, inserted_id, remember_template, utcnow, vaults
from custody.types import Address, format_amount

# Safe v1.4.1 storage slots (see GuardManager / FallbackManager).
GUARD_SLOT = int.from_bytes(keccak(text="guard_manager.guard.address"), "big")
FALLBACK_HANDLER_SLOT = int.from_bytes(keccak(text="fallback_manager.handler.address"), "big")
SENTINEL = "0x0000000000000000000000000000000000000001"
VAULT_CREATED_TOPIC = "0x" + keccak(text="VaultCreated(address,address,address,address,bytes32,bytes32)").hex()


@dataclass(frozen=True)
class VaultRecord:
    """What the workspace remembers about a vault (addresses and provenance, not live state)."""

    id: int
    chain_id: int
    name: str
    risk_class: str
    safe: Address
    timelock: Address
    guard: Address | None
    exit_module: Address | None
    policy_path: str
    policy_hash: str
    policy_source: str
    created_tx: str
    created_block: int

    def policy(self) -> Policy:

        return load_policy_text(self.policy_source, self.policy_path)


@dataclass(frozen=True)
class TokenBalance:
    symbol: str
    token: Address | None
    decimals: int
    balance: int | None  # None when the policy's token has no ERC-20 contract on this chain
    problem: str | None = None

    @property
    def amount(self) -> str | None:
        """The balance as an exact decimal string in the asset's units (``"2.5"``), ``None`` when unknown."""
        return None if self.balance is None else format_amount(self.balance, self.decimals)


@dataclass(frozen=True)
class VaultState:
    """Live on-chain state of a vault, read at one block."""

    record: VaultRecord
    block_number: int
    owners: list[Address]
    threshold: int
    nonce: int
    version: str
    singleton: Address | None  # None: storage slot 0 is empty (not a Safe proxy)
    singleton_is_canonical: bool
    modules: list[Address]
    guard: Address | None
    fallback_handler: Address | None
    fallback_handler_is_custody: bool
    timelock_delay: int
    timelock_roles_ok: bool
    # the timelock's code is the factory's clone of its VaultTimelock implementation (nothing else can
    # answer for roles and delays the way the factory bound them)
    timelock_is_factory_clone: bool
    balances: list[TokenBalance] = field(default_factory=list)
    guard_info: GuardInfo | None = None
    recorded_policy_matches: bool | None = None  # on-chain POLICY_HASH == compiled recorded template
    # what the guard's code proves (custody.policy.guard_code): the reproducible build, and its policy
    guard_code: GuardProvenance | None = None
    code_policy_matches: bool | None = None  # the policy the code proves == compiled recorded template
    template_file_status: str = "unknown"  # "matches" | "differs" | "missing" | "invalid"


def _row_to_record(row: RowMapping) -> VaultRecord:
    return VaultRecord(
        id=row["id"],
        chain_id=row["chain_id"],
        name=row["name"],
        risk_class=row["risk_class"],
        safe=row["safe"],
        timelock=row["timelock"],
        guard=row["guard"],
        exit_module=row["exit_module"],
        policy_path=row["policy_path"],
        policy_hash=row["policy_hash"],
        policy_source=row["policy_source"],
        created_tx=row["created_tx"],
        created_block=row["created_block"],
    )


def list_vaults(session: Session) -> list[VaultRecord]:
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(vaults).where(vaults.c.chain_id == session.chain_id).order_by(vaults.c.id)
        ).mappings()
        return [_row_to_record(r) for r in rows]


def known_tokens(store: Store) -> dict[str, tuple[str, int]]:
    """The ERC-20 tokens the workspace's vault policies name (any chain): address in lower case → (symbol,
    decimals) as the templates declare them. For people-facing output when the chain is not at hand."""
    with store.connect() as conn:
        rows = conn.execute(sa.select(vaults).order_by(vaults.c.id)).mappings().all()
    tokens: dict[str, tuple[str, int]] = {}
    for row in rows:
        for asset in _row_to_record(row).policy().assets:
            if asset.token is not None:
                tokens.setdefault(asset.token.lower(), (asset.symbol, asset.decimals))
    return tokens


def get_vault(session: Session, ref: str | int) -> VaultRecord:
    """A vault by id, name or Safe address on this session's chain."""
    text = str(ref).strip()
    query = sa.select(vaults).where(vaults.c.chain_id == session.chain_id)
    if text.isdigit():
        query = query.where(vaults.c.id == int(text))
    elif text.lower().startswith("0x") and len(text) == 42:
        query = query.where(sa.func.lower(vaults.c.safe) == text.lower())
    else:
        query = query.where(vaults.c.name == text)
    with session.store.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        known = ", ".join(f"{v.id}:{v.name}" for v in list_vaults(session)) or "none"
        raise UnknownVault(
            f"no vault {text!r} on chain {session.chain_id} in workspace {session.workspace.home} (known: {known})",
            vault=text,
        )
    record = _row_to_record(row)
    if codehash(session.chain, record.safe) is None:
        raise VaultError(
            f"vault {record.name} ({record.safe}) has no code on chain {session.chain_id}; was the chain reset?",
            hint="start the workspace chain with `custody chain up` so its saved state is loaded",
        )
    return record


def vault_salt(name: str) -> bytes:
    return keccak(text=f"custody.vault:{name}")


def _vault_params(policy: Policy, name: str, *, with_guard: bool = True) -> tuple[Any, ...]:
    exit_config = compile_exit(policy)
    return (
        policy.owner_addresses,
        policy.threshold,
        policy.timelock_delay,
        policy.template_hash,
        vault_salt(name),
        with_guard,
        policy.guard_deployment == "clone",
        compile_policy(policy).as_tuple(),
        exit_config is not None,
        exit_config or NO_EXIT,
    )


def exit_module_of(session: Session, safe: str, timelock: str) -> Address | None:
    """The vault's ExitModule: the enabled module that is not its timelock (None without one)."""
    contract = session.contract("SafeL2", safe)
    modules, _next = session.chain.call(contract.functions.getModulesPaginated(SENTINEL, 10).call)
    others = [m for m in modules if m.lower() != timelock.lower()]
    return Address(to_checksum_address(others[0])) if others else None


def create_vault(
    session: Session, policy_path: str | Path, *, name: str | None = None, with_guard: bool = True
) -> tuple[VaultRecord, dict[str, Any]]:
    """Deploy a micro-vault from a template (Safe + timelock + CustodyGuard in one transaction) and record it.

    Returns the record and facts about the deployment (gas, tx hash, whether it was resumed).
    ``with_guard=False`` leaves the Safe unguarded: only for measuring the guard's overhead.
    """
    policy = load_policy(policy_path)
    name = name or policy.name
    with session.store.connect() as conn:
        clash = conn.execute(
            sa.select(vaults.c.safe).where(vaults.c.chain_id == session.chain_id, vaults.c.name == name)
        ).first()
    if clash is not None:
        raise VaultError(f"a vault named {name!r} exists already on chain {session.chain_id} ({clash[0]})", vault=name)

    infra = session.infrastructure()
    factory = session.contract("MicroVaultFactory", infra.vault_factory)
    params = _vault_params(policy, name, with_guard=with_guard)
    predicted_safe, predicted_timelock = session.chain.call(
        factory.functions.predictVault(params, session.sender.address).call
    )
    facts: dict[str, Any] = {"resumed": False}
    if codehash(session.chain, predicted_safe) is not None:
        # Deterministic addresses: a previous run created it but did not record it. Adopt it.
        tx_hash, block, gas = _find_creation(session, infra.vault_factory, predicted_safe)
        facts["resumed"] = True
    else:
        data = factory.encode_abi("createVault", [params])
        receipt = session.send(to=infra.vault_factory, data=bytes.fromhex(data[2:]), what=f"creating vault {name}")
        events = factory.events.VaultCreated().process_receipt(receipt.raw, errors=_discard())
        if not events or events[0]["args"]["safe"] != predicted_safe:
            raise VaultError(
                f"vault creation for {name} did not emit the expected VaultCreated event", tx=receipt.tx_hash
            )
        tx_hash, block, gas = receipt.tx_hash, receipt.block_number, receipt.gas_used
    guard = installed_guard(session, predicted_safe)
    exit_module = exit_module_of(session, predicted_safe, predicted_timelock)
    facts.update(tx_hash=tx_hash, block=block, gas_used=gas, guard=guard, exit_module=exit_module)
    values = dict(
        chain_id=session.chain_id,
        name=name,
        risk_class=policy.risk_class,
        safe=predicted_safe,
        timelock=predicted_timelock,
        guard=guard,
        exit_module=exit_module,
        policy_path=str(policy_path),
        policy_hash="0x" + policy.template_hash.hex(),
        policy_source=policy.source_text,
        created_tx=tx_hash,
        created_block=block,
        created_at=utcnow(),
    )
    with session.store.begin() as conn:
        vault_id = inserted_id(conn.execute(vaults.insert().values(**values)))
        remember_template(conn, "0x" + policy.template_hash.hex(), policy.source_text, str(policy_path))
        audit.vault_created(conn, session, values, facts)
    return get_vault(session, vault_id), facts


def _discard() -> Any:
    from web3.logs import DISCARD

    return DISCARD


def _find_creation(session: Session, factory_address: str, safe: str) -> tuple[str, int, int]:
    logs = session.chain.call(
        session.chain.w3.eth.get_logs,
        {
            "fromBlock": 0,
            "toBlock": "latest",
            "address": factory_address,
            "topics": [VAULT_CREATED_TOPIC, "0x" + bytes(12).hex() + safe[2:].lower()],
        },
    )
    if not logs:
        raise VaultError(f"a contract exists at the predicted vault address {safe} but no VaultCreated event names it")
    log = logs[-1]
    receipt = session.chain.call(session.chain.w3.eth.get_transaction_receipt, log["transactionHash"])
    return "0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"]), int(receipt["gasUsed"])


def _address_from_slot(raw: bytes) -> Address | None:
    value = int.from_bytes(raw, "big")
    return None if value == 0 else Address(to_checksum_address(value.to_bytes(20, "big")))


def read_state(session: Session, record: VaultRecord) -> VaultState:
    """Read the vault's live configuration and balances from the chain at the latest block."""
    chain = session.chain
    w3: Web3 = chain.w3
    block = chain.call(lambda: w3.eth.block_number)
    safe = session.contract("SafeL2", record.safe)
    timelock = session.contract("VaultTimelock", record.timelock)
    owners = chain.call(safe.functions.getOwners().call, block_identifier=block)
    threshold = chain.call(safe.functions.getThreshold().call, block_identifier=block)
    nonce = chain.call(safe.functions.nonce().call, block_identifier=block)
    version = chain.call(safe.functions.VERSION().call, block_identifier=block)
    modules, _next = chain.call(safe.functions.getModulesPaginated(SENTINEL, 50).call, block_identifier=block)
    singleton = _address_from_slot(chain.call(w3.eth.get_storage_at, record.safe, 0, block))
    guard = _address_from_slot(chain.call(w3.eth.get_storage_at, record.safe, GUARD_SLOT, block))
    handler = _address_from_slot(chain.call(w3.eth.get_storage_at, record.safe, FALLBACK_HANDLER_SLOT, block))
    delay = chain.call(timelock.functions.getMinDelay().call, block_identifier=block)
    proposer_role = chain.call(timelock.functions.PROPOSER_ROLE().call)
    canceller_role = chain.call(timelock.functions.CANCELLER_ROLE().call)
    admin_role = chain.call(timelock.functions.DEFAULT_ADMIN_ROLE().call)
    bound = chain.call(timelock.functions.vault().call, block_identifier=block)
    roles_ok = (
        bound == record.safe
        and chain.call(timelock.functions.hasRole(proposer_role, record.safe).call, block_identifier=block)
        and chain.call(timelock.functions.hasRole(canceller_role, record.safe).call, block_identifier=block)
        and not chain.call(timelock.functions.hasRole(admin_role, record.timelock).call, block_identifier=block)
    )
    infra = session.infrastructure(deploy=False)
    factory = session.contract("MicroVaultFactory", infra.vault_factory)
    implementation = chain.call(factory.functions.TIMELOCK_IMPLEMENTATION().call)
    timelock_code = bytes(chain.call(w3.eth.get_code, record.timelock, block))
    balances = [TokenBalance("ETH", None, 18, chain.call(w3.eth.get_balance, record.safe, block))]
    for asset in record.policy().assets:
        if asset.token is not None:
            token = session.contract("TestERC20", asset.token)
            try:
                amount = chain.call(token.functions.balanceOf(record.safe).call, block_identifier=block)
            except (ContractLogicError, BadFunctionCallOutput):
                balances.append(
                    TokenBalance(asset.symbol, asset.token, asset.decimals, None, "no ERC-20 contract at this address")
                )
                continue
            balances.append(TokenBalance(asset.symbol, asset.token, asset.decimals, amount))
    guard_info = read_guard(session, guard) if guard is not None else None
    recorded_matches = None
    file_status = "no guard"
    guard_code = guard_provenance(chain, guard) if guard is not None else None
    recorded_hash = compile_policy(record.policy()).policy_hash if guard is not None else None
    code_matches = None
    if guard_info is not None:
        recorded_matches = recorded_hash == guard_info.policy_hash
        file_status = _template_file_status(record.policy_path, guard_info.policy_hash)
    if guard_code is not None:
        code_matches = recorded_hash == guard_code.policy_hash
    return VaultState(
        guard_info=guard_info,
        recorded_policy_matches=recorded_matches,
        guard_code=guard_code,
        code_policy_matches=code_matches,
        template_file_status=file_status,
        record=record,
        block_number=block,
        owners=list(owners),
        threshold=threshold,
        nonce=nonce,
        version=version,
        singleton=singleton,
        singleton_is_canonical=singleton == infra.safe_singleton,
        modules=list(modules),
        guard=guard,
        fallback_handler=handler,
        fallback_handler_is_custody=handler == infra.fallback_handler,
        timelock_delay=delay,
        timelock_roles_ok=bool(roles_ok),
        timelock_is_factory_clone=timelock_code == minimal_proxy_code(implementation),
        balances=balances,
    )


def _template_file_status(path: str, onchain_hash: bytes) -> str:
    """Does the template file at ``path`` (as it is now) compile to the enforced policy?"""

    if not Path(path).is_file():
        return "missing"
    try:
        compiled = compile_policy(load_policy(path))
    except TemplateError:
        return "invalid"
    return "matches" if compiled.policy_hash == onchain_hash else "differs"
