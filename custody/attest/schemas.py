"""One EAS schema per custody step. Field layouts are part of the public format (docs/attestations.md).

Schema UIDs are deterministic — keccak256(abi.encodePacked(schema, resolver, revocable)) — so they
are the same on every chain and across runs. No resolver: who may attest which step is decided by
the vault's template and checked when verifying (see docs/attestations.md: "Who may attest").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_abi.packed import encode_packed
from eth_utils import keccak, to_checksum_address

from custody.exceptions import InputError
from custody.session import Session
from custody.types import ZERO_ADDRESS


@dataclass(frozen=True)
class Step:
    name: str
    schema: str  # EAS schema string: "type name,type name,..."
    revocable: bool
    description: str

    @property
    def fields(self) -> list[tuple[str, str]]:
        out = []
        for part in self.schema.split(","):
            type_, name = part.strip().rsplit(" ", 1)
            out.append((type_, name))
        return out

    @property
    def types(self) -> list[str]:
        return [t for t, _n in self.fields]

    @property
    def uid(self) -> bytes:
        return keccak(encode_packed(["string", "address", "bool"], [self.schema, ZERO_ADDRESS, self.revocable]))

    def encode(self, values: dict[str, Any]) -> bytes:
        missing = [n for _t, n in self.fields if n not in values]
        extra = sorted(set(values) - {n for _t, n in self.fields})
        if missing or extra:
            raise InputError(
                f"{self.name} badge fields: missing {', '.join(missing) or '-'}; unknown {', '.join(extra) or '-'} "
                f"(schema: {self.schema})"
            )
        return encode(self.types, [values[n] for _t, n in self.fields])

    def decode(self, data: bytes) -> dict[str, Any]:
        values = decode(self.types, data)
        return {n: (to_checksum_address(v) if t == "address" else v) for (t, n), v in zip(self.fields, values)}


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step(
            "kyc",
            "address vault,address subject,string jurisdiction,bytes32 evidenceHash",
            True,
            "a signer's identity was verified (recipient: the signer; expiry: the KYC's validity)",
        ),
        Step(
            "approval",
            "address vault,bytes32 safeTxHash,address signer,bytes32 ledgerEntry",
            True,
            "an owner approved a Safe transaction (recipient: the signer)",
        ),
        Step(
            "oob_confirmation",
            "address vault,bytes32 safeTxHash,string confirmer,string method,bytes32 ledgerEntry",
            True,
            "an out-of-band confirmation was given for a Safe transaction",
        ),
        Step(
            "execution",
            "address vault,bytes32 safeTxHash,bytes32 txHash,address asset,address to,uint256 amount,bytes32[] approvals,bytes32 ledgerEntry",
            True,
            "a Safe transaction was executed (recipient: the vault; refUID: its last approval / confirmation badge)",
        ),
        Step(
            "inventory_tag",
            "address vault,address token,bytes32 barId,string serial,string refiner,uint256 fineWeight,bytes32 barListHash",
            True,
            "a physical bar backs a collateral token (recipient: the token)",
        ),
        Step(
            "reconciliation",
            "address vault,address token,bytes32 barListHash,bytes32 reportHash,uint256 supply,uint256 backing,bool backed,bytes32 ledgerEntry",
            True,
            "a reconciliation of a collateral token was signed off",
        ),
        Step(
            "drill",
            "address vault,string playbook,bytes32 reportHash,bool passed,bytes32 ledgerEntry",
            True,
            "a resilience drill was completed",
        ),
    )
}
STEP_BY_UID = {step.uid: step for step in STEPS.values()}


def step(name: str) -> Step:
    if name not in STEPS:
        raise InputError(f"unknown custody step {name!r} (known: {', '.join(STEPS)})")
    return STEPS[name]


def register_schemas(session: Session, registry: str) -> dict[str, dict[str, Any]]:
    """Register every step's schema once (idempotent); returns name -> {uid, registered_now}."""
    contract = session.contract("SchemaRegistry", registry)
    out = {}
    for s in STEPS.values():
        record = session.chain.call(contract.functions.getSchema(s.uid).call)
        registered_now = False
        if bytes(record[0]) != s.uid:
            data = bytes.fromhex(contract.encode_abi("register", [s.schema, ZERO_ADDRESS, s.revocable])[2:])
            session.send(to=registry, data=data, what=f"registering the {s.name} schema")
            registered_now = True
        out[s.name] = {
            "uid": "0x" + s.uid.hex(),
            "schema": s.schema,
            "revocable": s.revocable,
            "registered_now": registered_now,
        }
    return out
