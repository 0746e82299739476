"""CollateralToken: deployment, issuer calldata, and issuer actions through the issuer vault's Safe.

Every issuer action (allocate, deallocate, mint, burn) is a Safe transaction of the issuer
micro-vault — proposed, signed by its owners and executed through :mod:`custody.vault.proposals` —
so the vault's policy (and, once it lands, its on-chain guard) governs it like any other transfer.
Before proposing, the call is simulated from the Safe's address so that a revert is reported with
the token's own custom error (``CollateralNotIssuer(caller=…)``) rather than Safe's generic GS013.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from custody.chain.transactions import Receipt
from custody.contracts.deploy import Deployed, deploy_deterministic, deploy_plain
from custody.contracts.errors import decode_revert
from custody.exceptions import DeploymentError, InputError, TransactionFailed
from custody.session import Session
from custody.signers.base import Signer
from custody.signers.local import LocalKeySigner
from custody.store import record_deployment
from custody.types import parse_address
from custody.vault import proposals
from custody.vault.service import create_vault, get_vault

if TYPE_CHECKING:  # custody.vault.service is imported where it is used (see create_issuer_vault)
    from custody.vault.service import VaultRecord

ISSUER_ROLE = keccak(text="ISSUER_ROLE")
CONSTRUCTOR_TYPES = ["string", "string", "address", "address"]
_ALLOCATE = function_signature_to_4byte_selector("allocate(bytes32[],uint256[])")
_DEALLOCATE = function_signature_to_4byte_selector("deallocate(bytes32[],uint256[])")
_MINT = function_signature_to_4byte_selector("mint(address,uint256,bytes32)")
_BURN = function_signature_to_4byte_selector("burn(uint256,bytes32)")


@dataclass(frozen=True)
class TokenSpec:
    name: str
    symbol: str
    admin: str  # DEFAULT_ADMIN_ROLE: manages the issuer role (the issuer vault's timelock)
    issuer: str  # ISSUER_ROLE: the issuer vault's Safe


def batch_hash(bar_ids: Sequence[bytes], fine_weights: Sequence[int]) -> bytes:
    """keccak256(abi.encode(barIds, fineWeights)) — the batch hash the contract computes and emits."""
    return keccak(encode(["bytes32[]", "uint256[]"], [list(bar_ids), list(fine_weights)]))


def _check_batch(bar_ids: Sequence[bytes], fine_weights: Sequence[int]) -> None:
    if not bar_ids or len(bar_ids) != len(fine_weights):
        raise InputError(
            f"a batch needs one fine weight per bar (got {len(bar_ids)} bars, {len(fine_weights)} weights)"
        )


def allocate_data(bar_ids: Sequence[bytes], fine_weights: Sequence[int]) -> bytes:
    _check_batch(bar_ids, fine_weights)
    return _ALLOCATE + encode(["bytes32[]", "uint256[]"], [list(bar_ids), list(fine_weights)])


def deallocate_data(bar_ids: Sequence[bytes], fine_weights: Sequence[int]) -> bytes:
    _check_batch(bar_ids, fine_weights)
    return _DEALLOCATE + encode(["bytes32[]", "uint256[]"], [list(bar_ids), list(fine_weights)])


def mint_data(to: str, amount: int, provenance: bytes) -> bytes:
    return _MINT + encode(["address", "uint256", "bytes32"], [parse_address(to, what="recipient"), amount, provenance])


def burn_data(amount: int, provenance: bytes) -> bytes:
    return _BURN + encode(["uint256", "bytes32"], [amount, provenance])


def token_salt(symbol: str) -> bytes:
    return keccak(text=f"custody.collateral:{symbol}")


def deploy_token(session: Session, spec: TokenSpec) -> Deployed:
    """Deploy CollateralToken deterministically (CREATE2, salt from the symbol) and record it.

    Idempotent: the same spec on the same chain finds the existing contract. The registry entry is
    named ``CollateralToken:<symbol>``.
    """
    admin = parse_address(spec.admin, what="token admin")
    issuer = parse_address(spec.issuer, what="token issuer")
    deployed = deploy_deterministic(
        session.chain,
        session.sender,
        "CollateralToken",
        constructor_types=CONSTRUCTOR_TYPES,
        constructor_args=[spec.name, spec.symbol, admin, issuer],
        salt=token_salt(spec.symbol),
    )
    _record(session, f"CollateralToken:{spec.symbol}", deployed)
    return deployed


def _record(session: Session, name: str, deployed: Deployed) -> None:
    name = name[:64]
    with session.store.begin() as conn:
        record_deployment(
            conn,
            session.chain_id,
            name,
            address=deployed.address,
            codehash=deployed.codehash,
            tx_hash=deployed.tx_hash,
            block_number=deployed.block_number,
        )


def preflight(session: Session, safe: str, token: str, data: bytes, *, what: str) -> None:
    """Simulate the token call from the Safe; a revert raises with the token's decoded custom error."""
    call = {"from": to_checksum_address(safe), "to": to_checksum_address(token), "data": "0x" + data.hex()}
    response = session.chain.call(session.chain.w3.provider.make_request, "eth_call", [call, "latest"])
    if "error" in response:
        error = response["error"]
        raw = error.get("data") if isinstance(error, dict) else None
        data_bytes = bytes.fromhex(raw[2:]) if isinstance(raw, str) and raw.startswith("0x") else None
        reason = decode_revert(data_bytes) if data_bytes else str(error.get("message", error))
        raise TransactionFailed(f"{what} would revert: {reason}", reason=reason)


def issue(
    session: Session, vault_ref: str | int, token: str, data: bytes, *, signers: Sequence[Signer], what: str
) -> Receipt:
    """Propose ``data`` to ``token`` from the issuer vault, collect ``signers``' approvals, execute."""

    vault = get_vault(session, vault_ref)
    preflight(session, vault.safe, token, data, what=what)
    proposal = proposals.propose(session, vault.id, to=token, data=data, description=what, proposer="reconcile")
    for signer in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), signer)
    return proposals.execute(session, proposals.get_proposal(session, proposal.id))


# -- an issuer micro-vault and its token -----------------------------------------------------------
ISSUER_FUNCTIONS = (
    "allocate(bytes32[],uint256[])",
    "deallocate(bytes32[],uint256[])",
    "mint(address,uint256,bytes32)",
    "burn(uint256,bytes32)",
)


def with_issuer_calls(template_text: str, token: str, controls: Sequence[str] = ("ISSUER-1",)) -> str:
    """The template with a ``contract_calls`` rule allowing the issuer functions on ``token``."""
    functions = "".join(f'      - "{f}"\n' for f in ISSUER_FUNCTIONS)
    return (
        template_text.rstrip("\n")
        + "\n\ncontract_calls:\n"
        + f"  - address: {to_checksum_address(token)}\n"
        + "    label: collateral-token\n"
        + "    functions:\n"
        + functions
        + f"    controls: [{', '.join(controls)}]\n"
    )


def create_address(deployer: str, nonce: int) -> str:
    import rlp

    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(deployer[2:]), nonce]))[-20:])


def create_issuer_vault(
    session: Session,
    template: str | Path,
    workdir: str | Path,
    *,
    name: str,
    token_name: str,
    symbol: str,
    deployer: Signer | None = None,
) -> tuple[VaultRecord, Deployed]:
    """An issuer micro-vault whose guard allows exactly the issuer calls on its own CollateralToken.

    The token's constructor names the vault (issuer = its Safe, admin = its timelock) and the vault's
    guard names the token, so the token is created by a deployer at a nonce known in advance: its
    address is fixed before the vault exists. On a local Anvil the deployer is a key derived from
    the vault name; elsewhere pass ``deployer`` (a fresh account). Returns (vault record, Deployed).
    """

    if deployer is None:
        if not session.chain.is_anvil:
            raise DeploymentError("pass the account that deploys the collateral token (deployer=) on this chain")
        deployer = LocalKeySigner(keccak(text=f"custody.collateral deployer:{name}"), uri=f"collateral-deployer:{name}")
    nonce = int(session.chain.call(session.chain.w3.eth.get_transaction_count, deployer.address))
    predicted = create_address(deployer.address, nonce)
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    derived = folder / f"{name}.yaml"
    derived.write_text(with_issuer_calls(Path(template).read_text(encoding="utf-8"), predicted), encoding="utf-8")
    record, _facts = create_vault(session, derived, name=name)
    if session.chain.call(session.chain.w3.eth.get_balance, deployer.address) < 10**18:
        session.send(to=deployer.address, value=10**18, what="funding the collateral token deployer")
    deployed = deploy_plain(
        session.chain,
        deployer,
        "CollateralToken",
        constructor_types=CONSTRUCTOR_TYPES,
        constructor_args=[token_name, symbol, record.timelock, record.safe],
    )
    if deployed.address != predicted:
        raise DeploymentError(f"collateral token landed at {deployed.address}, expected {predicted}")
    _record(session, f"CollateralToken:{symbol}", deployed)
    return record, deployed
