"""Per-chain infrastructure: Safe v1.4.1 (canonical addresses) plus the custody factory contracts.

Deployed once per chain, deterministically, and recorded in the deployment registry. A second run
finds every contract at its CREATE2 address and only re-records it.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
import sqlalchemy as sa
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from custody import events
from custody.chain.connection import Chain
from custody.chain.transactions import TransactionSigner, send_transaction
from custody.contracts import load_artifact
from custody.contracts.deploy import Deployed, codehash, deploy_code_store, deploy_deterministic, deploy_plain
from custody.exceptions import DeploymentError
from custody.signers.local import LocalKeySigner
from custody.store import Store, deployments, record_deployment
from custody.types import Address

SAFE_COMPONENTS = ("SafeL2", "SafeProxyFactory", "CompatibilityFallbackHandler", "MultiSendCallOnly")
CUSTODY_COMPONENTS = (
    "CustodyGuardCode",
    "CustodyGuardCodeTail",
    "CustodyGuardClone",
    "GuardDeployer",
    "ExitModule",
    "ExitModuleDeployer",
    "CustodyFallbackHandler",
    "VaultSetup",
    "MicroVaultFactory",
    "LedgerAnchor",
)


@dataclass(frozen=True)
class Infrastructure:
    chain_id: int
    safe_singleton: Address
    proxy_factory: Address
    safe_fallback_handler: Address  # Safe's CompatibilityFallbackHandler (plain Safes only, never a vault)
    multisend_call_only: Address
    vault_setup: Address
    vault_factory: Address
    fallback_handler: Address  # CustodyFallbackHandler: every vault's
    guard_deployer: Address

    def as_dict(self) -> dict[str, str]:
        return {
            "SafeL2": self.safe_singleton,
            "SafeProxyFactory": self.proxy_factory,
            "CompatibilityFallbackHandler": self.safe_fallback_handler,
            "MultiSendCallOnly": self.multisend_call_only,
            "VaultSetup": self.vault_setup,
            "MicroVaultFactory": self.vault_factory,
            "CustodyFallbackHandler": self.fallback_handler,
            "GuardDeployer": self.guard_deployer,
        }


def _components(chain: Chain, sender: TransactionSigner) -> list[Deployed]:
    done: dict[str, Deployed] = {}
    for name in SAFE_COMPONENTS:
        done[name] = deploy_deterministic(chain, sender, name)
    # CustodyGuard's creation code is larger than one contract may be: it is stored in two halves.
    creation = load_artifact("CustodyGuard").bytecode
    half = len(creation) // 2
    done["CustodyGuardCode"] = deploy_code_store(chain, sender, "CustodyGuardCode", creation[:half])
    done["CustodyGuardCodeTail"] = deploy_code_store(chain, sender, "CustodyGuardCodeTail", creation[half:])
    done["CustodyGuardClone"] = deploy_deterministic(chain, sender, "CustodyGuardClone")  # clones' implementation
    done["GuardDeployer"] = deploy_deterministic(
        chain,
        sender,
        "GuardDeployer",
        constructor_types=["address", "address", "address"],
        constructor_args=[
            done["CustodyGuardCode"].address,
            done["CustodyGuardCodeTail"].address,
            done["CustodyGuardClone"].address,
        ],
    )
    done["ExitModule"] = deploy_deterministic(chain, sender, "ExitModule")
    done["ExitModuleDeployer"] = deploy_deterministic(
        chain,
        sender,
        "ExitModuleDeployer",
        constructor_types=["address"],
        constructor_args=[done["ExitModule"].address],
    )
    done["CustodyFallbackHandler"] = deploy_deterministic(chain, sender, "CustodyFallbackHandler")
    done["VaultSetup"] = deploy_deterministic(
        chain,
        sender,
        "VaultSetup",
        constructor_types=["address", "address"],
        constructor_args=[done["GuardDeployer"].address, done["ExitModuleDeployer"].address],
    )
    done["LedgerAnchor"] = deploy_deterministic(chain, sender, "LedgerAnchor")  # audit-ledger tree heads
    done["MicroVaultFactory"] = deploy_deterministic(
        chain,
        sender,
        "MicroVaultFactory",
        constructor_types=["address", "address", "address", "address", "address"],
        constructor_args=[
            done["SafeProxyFactory"].address,
            done["SafeL2"].address,
            done["CustodyFallbackHandler"].address,
            done["VaultSetup"].address,
            done["MultiSendCallOnly"].address,
        ],
    )
    return list(done.values())


def ensure_infrastructure(
    chain: Chain, sender: TransactionSigner, store: Store
) -> tuple[Infrastructure, list[Deployed]]:
    """Deploy (or find) every component and record it; returns the set and what happened per item.

    On a local Anvil the demo stablecoin that the example templates name is deployed too.
    """
    results = _components(chain, sender)
    if chain.is_anvil:
        results.append(ensure_demo_token(chain, sender))
    with store.begin() as conn:
        for item in results:
            record_deployment(
                conn,
                chain.chain_id,
                item.name,
                address=item.address,
                codehash=item.codehash,
                tx_hash=item.tx_hash,
                block_number=item.block_number,
            )
        events.publish(events.InfrastructureDeployed(conn, store, chain.chain_id, results, actor=sender.address))
    return _from_names(chain.chain_id, {d.name: d.address for d in results}), results


def load_infrastructure(chain: Chain, store: Store) -> Infrastructure:
    """Read the registry for this chain and check each recorded contract still has its code."""
    with store.connect() as conn:
        rows = conn.execute(sa.select(deployments).where(deployments.c.chain_id == chain.chain_id)).mappings().all()
    recorded = {row["name"]: row for row in rows}
    missing = [name for name in (*SAFE_COMPONENTS, *CUSTODY_COMPONENTS) if name not in recorded]
    if missing:
        raise DeploymentError(
            f"no custody infrastructure recorded for chain {chain.chain_id} (missing {', '.join(missing)})",
            hint="run `custody infra deploy` (vault create does it automatically on local chains)",
        )
    for name, row in recorded.items():
        if codehash(chain, row["address"]) != row["codehash"]:
            raise DeploymentError(
                f"registry records {name} at {row['address']} on chain {chain.chain_id}, but the chain has "
                "different or no code there (was the chain reset?)",
                hint="run `custody infra deploy` to redeploy and re-record",
            )
    return _from_names(chain.chain_id, {name: row["address"] for name, row in recorded.items()})


def _from_names(chain_id: int, names: dict[str, str]) -> Infrastructure:
    return Infrastructure(
        chain_id=chain_id,
        safe_singleton=Address(names["SafeL2"]),
        proxy_factory=Address(names["SafeProxyFactory"]),
        safe_fallback_handler=Address(names["CompatibilityFallbackHandler"]),
        multisend_call_only=Address(names["MultiSendCallOnly"]),
        vault_setup=Address(names["VaultSetup"]),
        vault_factory=Address(names["MicroVaultFactory"]),
        fallback_handler=Address(names["CustodyFallbackHandler"]),
        guard_deployer=Address(names["GuardDeployer"]),
    )


# A demo stablecoin for local chains (open mint). It is created by a dedicated deployer key at
# nonce 0, so its address depends on nothing but that key: it stays the same across recompiles and
# on every fresh local chain, and the example templates can name it.
DEMO_TOKEN = ("TestERC20", ["string", "string", "uint8"], ["Demo USD", "dUSD", 6])
DEMO_TOKEN_DEPLOYER_KEY = keccak(text="custody: demo token deployer (local chains only)")
_DEPLOYER = bytes.fromhex(Account.from_key(DEMO_TOKEN_DEPLOYER_KEY).address[2:])
DEMO_TOKEN_ADDRESS = Address(to_checksum_address(keccak(rlp.encode([_DEPLOYER, 0]))[-20:]))


def ensure_demo_token(chain: Chain, sender: TransactionSigner) -> Deployed:
    if not chain.is_anvil:
        raise DeploymentError("the demo token (open mint) is only deployed on local Anvil chains")
    existing = codehash(chain, DEMO_TOKEN_ADDRESS)
    if existing:
        return Deployed("DemoUSD", DEMO_TOKEN_ADDRESS, existing, None, None, 0)

    deployer = LocalKeySigner(DEMO_TOKEN_DEPLOYER_KEY, uri="demo-token-deployer")
    if chain.call(chain.w3.eth.get_transaction_count, deployer.address) != 0:
        raise DeploymentError("the demo token deployer key was used for something else on this chain")
    send_transaction(chain, sender, to=deployer.address, value=10**17, what="funding the demo token deployer")
    name, types, args = DEMO_TOKEN
    deployed = deploy_plain(chain, deployer, name, constructor_types=types, constructor_args=args)
    if deployed.address != DEMO_TOKEN_ADDRESS:
        raise DeploymentError(f"demo token landed at {deployed.address}, expected {DEMO_TOKEN_ADDRESS}")
    return Deployed(
        "DemoUSD", deployed.address, deployed.codehash, deployed.tx_hash, deployed.block_number, deployed.gas_used
    )
