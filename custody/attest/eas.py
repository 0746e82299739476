"""The Ethereum Attestation Service on this chain: deployed from the pinned npm artifacts on a local
Anvil (deterministically, once per chain), or attached to existing addresses by configuration.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import sqlalchemy as sa

from custody.contracts.deploy import codehash, deploy_deterministic
from custody.exceptions import DeploymentError
from custody.session import Session
from custody.store import deployments, record_deployment
from custody.types import Address, parse_address

EAS_ENV = "CUSTODY_EAS"  # "EAS_ADDRESS,SCHEMA_REGISTRY_ADDRESS" to attach on other chains


@dataclass(frozen=True)
class Eas:
    eas: Address
    registry: Address
    version: str
    chain_id: int


def _record(session: Session, name: str, address: str, tx_hash: str | None, block: int | None) -> None:
    with session.store.begin() as conn:
        record_deployment(
            conn,
            session.chain_id,
            name,
            address=address,
            codehash=codehash(session.chain, address) or "",
            tx_hash=tx_hash,
            block_number=block,
        )


def _recorded(session: Session) -> dict[str, str]:
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(deployments.c.name, deployments.c.address).where(
                deployments.c.chain_id == session.chain_id, deployments.c.name.in_(["EAS", "SchemaRegistry"])
            )
        ).all()
    return {name: address for name, address in rows}


def ensure_eas(session: Session) -> Eas:
    """EAS for this session's chain: configured, recorded, or (on a local Anvil) deployed now."""
    configured = os.environ.get(EAS_ENV)
    if configured:
        try:
            eas_address, registry_address = (parse_address(x.strip()) for x in configured.split(","))
        except ValueError as exc:
            raise DeploymentError(f"${EAS_ENV} must be 'EAS_ADDRESS,SCHEMA_REGISTRY_ADDRESS'") from exc
        return _check(session, eas_address, registry_address)
    recorded = _recorded(session)
    if "EAS" in recorded and "SchemaRegistry" in recorded and codehash(session.chain, recorded["EAS"]):
        return _check(session, Address(recorded["EAS"]), Address(recorded["SchemaRegistry"]))
    if not session.chain.is_anvil:
        raise DeploymentError(
            f"no EAS known on chain {session.chain_id}",
            hint=f"set ${EAS_ENV}=EAS_ADDRESS,SCHEMA_REGISTRY_ADDRESS (the chain's official EAS deployment)",
        )
    registry = deploy_deterministic(session.chain, session.sender, "SchemaRegistry")
    eas = deploy_deterministic(
        session.chain, session.sender, "EAS", constructor_types=["address"], constructor_args=[registry.address]
    )
    _record(session, "SchemaRegistry", registry.address, registry.tx_hash, registry.block_number)
    _record(session, "EAS", eas.address, eas.tx_hash, eas.block_number)
    return _check(session, eas.address, registry.address)


def _check(session: Session, eas_address: str, registry_address: str) -> Eas:
    eas = session.contract("EAS", eas_address)
    try:
        version = session.chain.call(eas.functions.version().call)
        linked = session.chain.call(eas.functions.getSchemaRegistry().call)
    except Exception as exc:
        raise DeploymentError(f"{eas_address} does not answer like an EAS contract") from exc
    if linked.lower() != registry_address.lower():
        raise DeploymentError(f"EAS {eas_address} uses schema registry {linked}, not {registry_address}")
    return Eas(Address(eas_address), Address(registry_address), str(version), session.chain_id)


def describe(deployment: Eas) -> str:
    return json.dumps(deployment.__dict__)
