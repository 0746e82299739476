"""Deterministic deployments through the Safe singleton factory (CREATE2), recorded in the registry.

The Safe singleton factory (``0x914d7Fec…43d7``) is the deployer Safe itself uses for its canonical
addresses. Deploying the bundled Safe v1.4.1 bytecode through it with salt 0 lands on the canonical
addresses (SafeL2 ``0x29fcB43b…C762``, proxy factory ``0x4e1DCf7A…ec67``, …), so an auditor can
compare our local infrastructure with every public chain. On a fresh Anvil the factory is created
from its presigned deployment transaction (vendored, chain id 31337).

Every deployment is idempotent: the CREATE2 address is computed first, and if code is already
there (and its hash matches) it is reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from custody.chain.connection import Chain
from custody.chain.transactions import TransactionSigner, send_raw, send_transaction, wait_for_receipt
from custody.contracts import load_artifact
from custody.contracts.errors import decode_revert
from custody.exceptions import ChainError, DeploymentError
from custody.types import Address

if TYPE_CHECKING:
    from web3.providers import JSONBaseProvider

SINGLETON_FACTORY = Address("0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7")
ZERO_SALT = b"\x00" * 32


@dataclass(frozen=True)
class Deployed:
    name: str
    address: Address
    codehash: str
    tx_hash: str | None  # None when the contract was already there
    block_number: int | None
    gas_used: int


def create2_address(deployer: str, salt: bytes, init_code: bytes) -> Address:
    digest = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak(init_code))
    return Address(to_checksum_address(digest[-20:]))


def minimal_proxy_code(implementation: str) -> bytes:
    """Runtime code of an EIP-1167 minimal proxy (an OpenZeppelin ``Clones`` clone) of ``implementation``."""
    return bytes.fromhex("363d3d373d3d3d363d73" + implementation[2:].lower() + "5af43d82803e903d91602b57fd5bf3")


def codehash(chain: Chain, address: str) -> str | None:
    code = chain.call(chain.w3.eth.get_code, address)
    return "0x" + keccak(bytes(code)).hex() if len(code) else None


def ensure_singleton_factory(chain: Chain, funder: TransactionSigner) -> None:
    """Make sure the Safe singleton factory exists, creating it from its presigned tx if we can."""
    if codehash(chain, SINGLETON_FACTORY):
        return
    resource = resources.files("custody.contracts").joinpath("vendor", f"safe-singleton-factory-{chain.chain_id}.json")
    if not resource.is_file():
        raise DeploymentError(
            f"the Safe singleton factory is not deployed on chain {chain.chain_id} and no presigned "
            "deployment for this chain id is bundled",
            hint="use chain id 31337 for local chains, or deploy the factory on this chain first",
        )
    deployment = json.loads(resource.read_text())
    cost = int(deployment["gasPrice"]) * int(deployment["gasLimit"])
    signer_balance = chain.call(chain.w3.eth.get_balance, deployment["signerAddress"])
    if signer_balance < cost:
        send_transaction(
            chain,
            funder,
            to=deployment["signerAddress"],
            value=cost - signer_balance,
            what="funding the factory deployer",
        )
    tx_hash = send_raw(chain, bytes.fromhex(deployment["transaction"].removeprefix("0x")))
    wait_for_receipt(chain, tx_hash, what="deploying the Safe singleton factory")
    if not codehash(chain, SINGLETON_FACTORY):
        raise DeploymentError("the Safe singleton factory deployment did not produce code")


def deploy_deterministic(
    chain: Chain,
    sender: TransactionSigner,
    name: str,
    *,
    constructor_types: list[str] | None = None,
    constructor_args: list[Any] | None = None,
    salt: bytes = ZERO_SALT,
) -> Deployed:
    """CREATE2-deploy artifact ``name`` via the singleton factory, or reuse what is already there."""
    artifact = load_artifact(name)
    init_code = artifact.bytecode
    if constructor_types:
        init_code += encode(constructor_types, constructor_args or [])
    address = create2_address(SINGLETON_FACTORY, salt, init_code)
    existing = codehash(chain, address)
    if existing:
        return Deployed(name, address, existing, None, None, 0)
    ensure_singleton_factory(chain, sender)
    receipt = send_transaction(
        chain, sender, to=SINGLETON_FACTORY, data=salt + init_code, what=f"deploying {name}", decoder=decode_revert
    )
    deployed = codehash(chain, address)
    if not deployed:
        raise DeploymentError(f"deploying {name} succeeded but no code is at {address}", tx=receipt.tx_hash)
    return Deployed(name, address, deployed, receipt.tx_hash, receipt.block_number, receipt.gas_used)


def code_store_init_code(data: bytes) -> bytes:
    """Init code of a contract whose runtime code is ``0x00 ‖ data`` (a STOP byte, then the data)."""
    runtime = b"\x00" + data
    if len(runtime) > 24576:
        raise DeploymentError(f"{len(runtime)} bytes do not fit a contract's code (EIP-170: 24,576)")
    return bytes.fromhex("61") + len(runtime).to_bytes(2, "big") + bytes.fromhex("80600c6000396000f3") + runtime


def deploy_code_store(chain: Chain, sender: TransactionSigner, name: str, data: bytes) -> Deployed:
    """CREATE2-deploy (or find) a code store holding ``data``; idempotent like deploy_deterministic."""
    init_code = code_store_init_code(data)
    address = create2_address(SINGLETON_FACTORY, ZERO_SALT, init_code)
    existing = codehash(chain, address)
    if existing:
        return Deployed(name, address, existing, None, None, 0)
    ensure_singleton_factory(chain, sender)
    receipt = send_transaction(
        chain, sender, to=SINGLETON_FACTORY, data=ZERO_SALT + init_code, what=f"deploying {name}"
    )
    stored = codehash(chain, address)
    if not stored:
        raise DeploymentError(f"deploying {name} succeeded but no code is at {address}", tx=receipt.tx_hash)
    return Deployed(name, address, stored, receipt.tx_hash, receipt.block_number, receipt.gas_used)


def deploy_plain(
    chain: Chain, sender: TransactionSigner, name: str, *, constructor_types: list[str], constructor_args: list[Any]
) -> Deployed:
    """Regular CREATE deployment (for per-vault or test contracts that must not be shared)."""
    artifact = load_artifact(name)
    data = artifact.bytecode + encode(constructor_types, constructor_args)
    receipt = send_transaction(chain, sender, to=None, data=data, what=f"deploying {name}", decoder=decode_revert)
    if not receipt.contract_address:
        raise DeploymentError(f"deploying {name} returned no contract address", tx=receipt.tx_hash)
    address = Address(to_checksum_address(receipt.contract_address))
    return Deployed(
        name, address, codehash(chain, address) or "", receipt.tx_hash, receipt.block_number, receipt.gas_used
    )


def contract(chain: Chain, name: str, address: str) -> Any:
    """A web3 contract object for artifact ``name`` at ``address`` (cached per chain connection)."""
    key = (name, address.lower())
    cache = chain.contract_factories
    if key not in cache:
        cache[key] = chain.w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name).abi)
    return cache[key]


def hexstr(data: bytes | HexBytes) -> str:
    return "0x" + bytes(data).hex()


def read_many(chain: Chain, calls: list[Any], block: int | str = "latest") -> list[Any]:
    """Run several view calls (bound ``contract.functions.f(args)`` objects) in one JSON-RPC batch.

    Returns the decoded values in order (a single output is unwrapped). Any call that reverts raises.
    """
    from eth_abi import decode as abi_decode

    requests = []
    for fn in calls:
        data = fn._encode_transaction_data()
        requests.append(
            ("eth_call", [{"to": fn.address, "data": data}, block if isinstance(block, str) else hex(block)])
        )
    responses = chain.call(_json_rpc(chain).make_batch_request, requests)
    if isinstance(responses, dict):  # the node answered the whole batch with one error
        raise ChainError(f"batched eth_call failed: {responses.get('error')}")
    results = []
    for fn, response in zip(calls, sorted(responses, key=lambda r: int(str(r["id"])))):
        if "error" in response:
            data = response["error"].get("data") if isinstance(response["error"], dict) else None
            reason = (
                decode_revert(bytes.fromhex(data[2:]))
                if isinstance(data, str) and data.startswith("0x")
                else response["error"]
            )
            raise ChainError(f"{fn.fn_name} on {fn.address} failed: {reason}")
        types = [_abi_type(o) for o in fn.abi["outputs"]]
        values = tuple(_checksum(t, v) for t, v in zip(types, abi_decode(types, bytes.fromhex(response["result"][2:]))))
        results.append(values[0] if len(values) == 1 else values)
    return results


def _checksum(abi_type: str, value: Any) -> Any:
    """eth-abi decodes addresses in lower case; return them EIP-55 checksummed like web3 does."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "address[]":
        return [to_checksum_address(v) for v in value]
    return value


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + str(item["type"][5:])
    return str(item["type"])


def _json_rpc(chain: Chain) -> JSONBaseProvider:
    """The chain's provider, which must speak JSON-RPC for a batch."""
    from web3.providers import JSONBaseProvider

    provider = chain.w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise ChainError(f"batched calls need a JSON-RPC provider, not {type(provider).__name__}")
    return provider
