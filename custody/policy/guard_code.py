"""What a guard's code proves about it, without trusting what the guard says about itself (issue 15).

An auditor's question is "is the code enforcing this vault the reproducible build, and is the policy it
enforces the template's?". Both kinds of guard answer it from chain data and the committed artifacts
(and the GuardDeployer's registry must vouch for the guard, for the Safe it binds):

* a **clone** (``guard.deployment: clone``): its code is the 45-byte EIP-1167 proxy of an implementation
  followed by its immutable arguments (layout: ``contracts/guard/GuardArgs.sol``). The implementation
  must be the GuardDeployer's ``GUARD_IMPLEMENTATION`` and its code the committed ``CustodyGuardClone``
  runtime byte for byte; the arguments are decoded here into the bindings and the configuration, whose
  ``keccak256(abi.encode(config))`` is the policy hash.
* a **dedicated** guard: its policy is compiled into immutables, so its code differs per vault. Its
  address does not: the GuardDeployer CREATE2-deploys the committed ``CustodyGuard`` creation code with
  the bindings and configuration as constructor arguments, so recomputing the address from the artifact
  and the configuration the guard reports proves the code and the configuration at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.chain.connection import Chain
from custody.contracts import load_artifact
from custody.contracts.deploy import contract
from custody.policy.compiled import CONFIG_ABI, GuardConfig
from custody.types import ZERO_ADDRESS, Address

CLONE_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
CLONE_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
CLONE_CODE_SIZE = 45  # prefix, implementation address, suffix
BINDINGS_ABI = "(address,address,address,address,address,address,address,uint16)"

# contracts/guard/GuardArgs.sol
_ADDRESSES = ("safe", "timelock", "multisend", "exit_module", "fallback_handler", "previous_guard", "deployer")
_TABLES = 188
_ASSET, _DESTINATION, _WINDOW, _CALL, _DOMAIN = 44, 21, 8, 24, 116


class GuardArgsError(ValueError):
    """Bytes that are not a clone guard's arguments (too short, or trailing bytes)."""


@dataclass(frozen=True)
class CloneArgs:
    """A clone guard's immutable arguments, decoded."""

    safe: Address
    timelock: Address
    multisend: Address
    exit_module: Address
    fallback_handler: Address
    previous_guard: Address
    deployer: Address
    config: GuardConfig
    message_domain_separators: tuple[bytes, ...]


@dataclass(frozen=True)
class GuardProvenance:
    """What the code at a guard's address proves.

    ``deployment`` is ``"clone"``, ``"dedicated"`` or ``"unknown"``; ``verified`` whether the code is the
    committed build and registered by the GuardDeployer it names for the Safe it binds (see the module
    docstring); ``config`` the configuration the code proves (None when it proves none) and
    ``policy_hash`` its hash; ``problem`` says why it is not verified.
    """

    guard: Address
    deployment: str
    verified: bool
    config: GuardConfig | None
    implementation: Address | None = None
    problem: str = ""

    @property
    def policy_hash(self) -> bytes | None:
        return None if self.config is None else self.config.policy_hash

    @property
    def template_hash(self) -> bytes | None:
        return None if self.config is None else self.config.template_hash

    def as_dict(self) -> dict[str, Any]:
        return {
            "guard": self.guard,
            "deployment": self.deployment,
            "verified": self.verified,
            "implementation": self.implementation,
            "policy_hash": None if self.policy_hash is None else "0x" + self.policy_hash.hex(),
            "template_hash": None if self.template_hash is None else "0x" + self.template_hash.hex(),
            "problem": self.problem,
        }


def clone_code(implementation: str, args: bytes) -> bytes:
    """Runtime code of an OpenZeppelin clone of ``implementation`` with immutable ``args``."""
    return CLONE_PREFIX + bytes.fromhex(implementation[2:]) + CLONE_SUFFIX + args


def split_clone(code: bytes) -> tuple[Address, bytes] | None:
    """(implementation, immutable arguments) of EIP-1167 clone code, or None if ``code`` is not a clone."""
    if len(code) < CLONE_CODE_SIZE or code[:10] != CLONE_PREFIX or code[30:CLONE_CODE_SIZE] != CLONE_SUFFIX:
        return None
    return Address(to_checksum_address(code[10:30])), code[CLONE_CODE_SIZE:]


def decode_clone_args(args: bytes) -> CloneArgs:
    """Decode a clone guard's arguments (``GuardArgs.encode``); raises :class:`GuardArgsError`."""
    if len(args) < _TABLES:
        raise GuardArgsError(f"{len(args)} bytes is shorter than the {_TABLES}-byte header of a clone guard")
    addresses = [Address(to_checksum_address(args[20 * i : 20 * i + 20])) for i in range(len(_ADDRESSES))]
    template_hash = args[140:172]
    header = args[172:188]
    n_assets, n_dests, n_windows, n_calls, n_domains, unrestricted = header[:6]
    allowed_start, allowed_end = int.from_bytes(header[6:10], "big"), int.from_bytes(header[10:14], "big")
    kinds = int.from_bytes(header[14:16], "big")
    size = _TABLES + _ASSET * n_assets + _DESTINATION * n_dests + _WINDOW * n_windows
    size += _CALL * n_calls + _DOMAIN * n_domains
    if len(args) != size:
        raise GuardArgsError(f"the header announces {size} bytes of arguments, the code holds {len(args)}")
    pos = _TABLES

    def take(width: int) -> bytes:
        nonlocal pos
        pos += width
        return args[pos - width : pos]

    def address(raw: bytes) -> Address:
        return Address(to_checksum_address(raw))

    def number(raw: bytes) -> int:
        return int.from_bytes(raw, "big")

    assets = [(address(take(20)), number(take(12)), number(take(12))) for _ in range(n_assets)]
    destinations = [(address(take(20)), number(take(1))) for _ in range(n_dests)]
    windows = [(number(take(4)), number(take(4))) for _ in range(n_windows)]
    calls = [(address(take(20)), take(4)) for _ in range(n_calls)]
    separators, domains = [], []
    for _ in range(n_domains):
        separators.append(take(32))
        name_hash, version_hash = take(32), take(32)
        domains.append((address(take(20)), name_hash, version_hash))
    raw = (
        assets,
        destinations,
        unrestricted,
        windows,
        allowed_start,
        allowed_end,
        kinds,
        template_hash,
        calls,
        domains,
    )
    safe, timelock, multisend, exit_module, handler, previous, deployer = addresses
    return CloneArgs(
        safe,
        timelock,
        multisend,
        exit_module,
        handler,
        previous,
        deployer,
        GuardConfig.from_chain(raw),
        tuple(separators),
    )


def guard_provenance(chain: Chain, guard: str) -> GuardProvenance:
    """What the code at ``guard`` proves (see the module docstring). Never raises for a bad guard: a code
    that proves nothing comes back with ``verified=False`` and the reason."""
    guard = Address(to_checksum_address(guard))
    code = bytes(chain.call(chain.w3.eth.get_code, guard))
    if not code:
        return GuardProvenance(guard, "unknown", False, None, problem="no code at the guard's address")
    split = split_clone(code)
    if split is not None:
        return _clone_provenance(chain, guard, *split)
    return _dedicated_provenance(chain, guard)


def _clone_provenance(chain: Chain, guard: Address, implementation: Address, args: bytes) -> GuardProvenance:
    try:
        decoded = decode_clone_args(args)
    except GuardArgsError as exc:
        return GuardProvenance(guard, "clone", False, None, implementation, f"arguments do not decode: {exc}")
    runtime = load_artifact("CustodyGuardClone").deployed_bytecode
    if bytes(chain.call(chain.w3.eth.get_code, implementation)) != runtime:
        problem = f"the implementation {implementation} is not the committed CustodyGuardClone build"
        return GuardProvenance(guard, "clone", False, decoded.config, implementation, problem)
    try:
        registered = chain.call(
            contract(chain, "GuardDeployer", decoded.deployer).functions.GUARD_IMPLEMENTATION().call
        )
    except (ContractLogicError, BadFunctionCallOutput):  # the named deployer is not a GuardDeployer
        registered = None
    if registered is None or str(registered) != implementation:
        problem = f"the deployer {decoded.deployer} it names does not use {implementation} for its clones"
        return GuardProvenance(guard, "clone", False, decoded.config, implementation, problem)
    problem = _registry_problem(chain, guard, decoded.deployer, decoded.safe)
    return GuardProvenance(guard, "clone", not problem, decoded.config, implementation, problem)


def _dedicated_provenance(chain: Chain, guard: Address) -> GuardProvenance:
    try:
        info = chain.call(contract(chain, "CustodyGuard", guard).functions.info().call)
    except (ContractLogicError, BadFunctionCallOutput):  # the code is not a CustodyGuard
        return GuardProvenance(guard, "unknown", False, None, problem="the code is neither a clone nor a CustodyGuard")
    _version, bindings, _policy_hash, _template_hash, _paused, _separators, raw_config = info
    safe, timelock, multisend, exit_module, handler, previous, deployer, _kinds = bindings
    config = GuardConfig.from_chain(raw_config)
    args = encode(
        ["address"] * 6 + [CONFIG_ABI], [safe, timelock, multisend, exit_module, handler, previous, config.as_tuple()]
    )
    init_hash = keccak(load_artifact("CustodyGuard").bytecode + args)
    binding_tuple = (safe, timelock, multisend, exit_module, handler, previous, deployer, 0)
    salted = keccak(encode([BINDINGS_ABI, CONFIG_ABI, "bool"], [binding_tuple, config.as_tuple(), False]))
    owner = previous if previous != ZERO_ADDRESS else safe  # deploySuccessor salts with the predecessor
    salts = (bytes(12) + bytes.fromhex(safe[2:]), keccak(encode(["address", "bytes32"], [owner, salted])))
    for salt in salts:
        derived = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + init_hash)[12:]
        if str(to_checksum_address(derived)) == str(guard):
            problem = _registry_problem(chain, guard, deployer, safe)
            return GuardProvenance(guard, "dedicated", not problem, config, problem=problem)
    problem = "its address is not the GuardDeployer's CREATE2 address of the committed CustodyGuard build"
    return GuardProvenance(guard, "dedicated", False, config, problem=problem + " with the configuration it reports")


def _registry_problem(chain: Chain, guard: Address, deployer: str, safe: str) -> str:
    """Why the GuardDeployer ``deployer`` does not vouch for ``guard`` as ``safe``'s ("" when it does)."""
    registered = str(chain.call(contract(chain, "GuardDeployer", deployer).functions.safeOf(guard).call))
    if registered != to_checksum_address(safe):
        return f"the GuardDeployer {deployer} records it for {registered}, not for the Safe it binds ({safe})"
    return ""
