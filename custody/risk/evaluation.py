"""``custody risk eval``: generated benign histories per template, then injected red-team cases.

Everything runs offline on the engine's pure path (:func:`custody.risk.engine.decide` on prepared
inputs), with each vault's baseline trained on the history that precedes the decision. Benign
activity: weekday office hours, a few transfers a day, a stable set of counterparties (the
template's allowlist plus a generated address book), log-normal amounts per counterparty, the usual
signers. Red-team cases: lookalike destination (4+4 and 6+6, plus 3+3 reported), burst, off-hours
drain, new-destination drain, sanctioned counterparty (addresses from the packaged list), owner
change hidden inside a MultiSend, unusual signer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from custody._paths import POLICIES_DIR
from custody.policy.model import Policy
from custody.policy.template import load_policy
from custody.risk import anomaly, forest, sanctions
from custody.risk.engine import Prepared, decide
from custody.risk.inputs import Movement, RiskInputs
from custody.risk.verdict import Decision, Verdict
from custody.safe.safe_tx import SafeTx
from custody.types import Address, Operation
from custody.vault.decode import MULTISEND, decode_safe_call

MULTISEND_CALL_ONLY = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
ADD_OWNER = function_signature_to_4byte_selector("addOwnerWithThreshold(address,uint256)")
ETHER = 10**18
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # a Monday
RED_TEAM = (
    "lookalike_4_4",
    "lookalike_6_6",
    "burst",
    "off_hours_drain",
    "new_destination_drain",
    "sanctioned_counterparty",
    "multisend_config_change",
    "unusual_signer",
)
ANOMALY_CASES = ("burst", "off_hours_drain", "new_destination_drain", "unusual_signer")


def _address(rng: random.Random) -> str:
    return to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)))


def lookalike_of(address: str, rng: random.Random, *, prefix: int, suffix: int) -> str:
    """An address sharing exactly ``prefix`` leading and ``suffix`` trailing hex characters with ``address``."""
    body = address.lower()[2:]
    while True:
        middle = "".join(rng.choice("0123456789abcdef") for _ in range(40 - prefix - suffix))
        candidate = body[:prefix] + middle + body[40 - suffix :]
        if candidate[prefix] != body[prefix] and candidate[39 - suffix] != body[39 - suffix]:
            return to_checksum_address("0x" + candidate)


@dataclasses.dataclass
class VaultWorld:
    name: str
    policy: Policy
    safe: Address
    owners: tuple[str, ...]
    usual_signers: tuple[str, ...]
    counterparties: list[str]
    medians: dict[str, float]
    known: dict[str, str]
    balance: int


def _world(policy: Policy, rng: random.Random) -> VaultWorld:
    safe = Address(to_checksum_address(keccak(text=f"eval:{policy.name}")[-20:]))
    owners = tuple(policy.owner_addresses)
    allowlisted = [item.address for asset in policy.assets for item in asset.allowlist]
    book = [_address(rng) for _ in range(12)]
    counterparties = list(dict.fromkeys([*allowlisted, *book]))
    medians = {c: 10 ** rng.uniform(-1, 1.2) for c in counterparties}  # 0.1 .. 16 ETH typical per counterparty
    known = {a: "allowlist" for a in allowlisted} | {a: "address book" for a in book}
    usual = owners[: max(policy.threshold, 1) + (1 if len(owners) > policy.threshold + 1 else 0)]
    return VaultWorld(policy.name, policy, safe, owners, usual, counterparties, medians, known, 400 * ETHER)


def _benign_time(rng: random.Random, after: dt.datetime) -> dt.datetime:
    """Weekday office hours (09-17 UTC), with about one transfer in twenty-five in the early/late shoulders."""
    start, end = (7, 20) if rng.random() < 0.04 else (9, 17)
    moment = after + dt.timedelta(hours=rng.expovariate(1 / 8))
    while moment.weekday() >= 5 or not start <= moment.hour < end:
        moment = moment.replace(minute=0, second=0) + dt.timedelta(hours=1)
        if moment.weekday() < 5 and start <= moment.hour < end:
            moment += dt.timedelta(minutes=rng.randrange(60))
    return moment


def _benign(world: VaultWorld, rng: random.Random, after: dt.datetime) -> Movement:
    weights = [1 / (i + 1) for i in range(len(world.counterparties))]
    destination = rng.choices(world.counterparties, weights=weights)[0]
    amount = int(world.medians[destination] * ETHER * float(np.exp(rng.gauss(0, 0.5))))
    signers = tuple(rng.sample(world.usual_signers, k=min(world.policy.threshold, len(world.usual_signers))))
    return Movement(_benign_time(rng, after), "ETH", amount, destination, signers)


def history_of(world: VaultWorld, rng: random.Random, count: int) -> list[Movement]:
    found: list[Movement] = []
    moment = START
    for _ in range(count):
        movement = _benign(world, rng, moment)
        found.append(movement)
        moment = movement.time
    return found


def _inputs(
    world: VaultWorld,
    history: list[Movement],
    *,
    to: str,
    value: int,
    data: bytes = b"",
    operation: Operation = Operation.CALL,
    now: dt.datetime,
    signer: str,
) -> RiskInputs:
    safe_tx = SafeTx(
        safe=world.safe, chain_id=31337, to=Address(to), value=value, data=data, operation=operation, nonce=len(history)
    )
    decoded = decode_safe_call(None, to, value, data, operation, safe=world.safe)
    return RiskInputs(
        stage="sign",
        safe_tx=safe_tx,
        decoded=decoded,
        now=now,
        settings=world.policy.risk,
        owners=world.owners,
        proposer=world.owners[0],
        signer=signer,
        signer_backend="eval",
        supplied_hash=safe_tx.safe_tx_hash,
        known=world.known,
        history=tuple(history),
        has_code={to: operation == Operation.DELEGATECALL},
        onchain_nonce=len(history),
        balances={"ETH": world.balance},
    )


def _decide(
    inputs: RiskInputs,
    listed: sanctions.SanctionsList,
    model: anomaly.BaselineModel,
    trees: forest.ForestModel | None = None,
) -> Decision:
    return decide(
        inputs.stage,
        "0x" + inputs.safe_tx.safe_tx_hash.hex(),
        lambda: Prepared(inputs, listed, model, trees),
        settings=inputs.settings,
    )


def _red_team(
    kind: str, world: VaultWorld, history: list[Movement], rng: random.Random, listed: sanctions.SanctionsList
) -> RiskInputs:
    last = history[-1]
    normal = _benign(world, rng, last.time)
    signer = normal.signers[0]
    if kind in ("lookalike_4_4", "lookalike_6_6"):
        size = 4 if kind == "lookalike_4_4" else 6
        target = rng.choice([m.destination for m in history[-50:]] + list(world.known))
        fake = lookalike_of(target, rng, prefix=size, suffix=size)
        return _inputs(world, history, to=fake, value=normal.amount, now=normal.time, signer=signer)
    if kind == "burst":
        burst_start = normal.time
        extra = [
            Movement(burst_start + dt.timedelta(minutes=3 * i), "ETH", m.amount, m.destination, m.signers)
            for i, m in enumerate(_benign(world, rng, last.time) for _ in range(9))
        ]
        return _inputs(
            world,
            [*history, *extra],
            to=normal.destination,
            value=normal.amount,
            now=burst_start + dt.timedelta(minutes=30),
            signer=signer,
        )
    if kind == "off_hours_drain":
        night = (last.time + dt.timedelta(days=(5 - last.time.weekday()) % 7 or 7)).replace(
            hour=3, minute=rng.randrange(60)
        )
        return _inputs(
            world,
            history,
            to=normal.destination,
            value=int(world.balance * rng.uniform(0.6, 0.95)),
            now=night,
            signer=signer,
        )
    if kind == "new_destination_drain":
        return _inputs(
            world,
            history,
            to=_address(rng),
            value=int(world.balance * rng.uniform(0.6, 0.95)),
            now=normal.time,
            signer=signer,
        )
    if kind == "sanctioned_counterparty":
        target = to_checksum_address(rng.choice(sorted(listed.addresses)))
        return _inputs(world, history, to=target, value=normal.amount, now=normal.time, signer=signer)
    if kind == "multisend_config_change":
        inner = [
            (0, normal.destination, normal.amount, b""),
            (0, world.safe, 0, ADD_OWNER + encode(["address", "uint256"], [_address(rng), 1])),
        ]
        packed = b"".join(
            bytes([op]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(d).to_bytes(32, "big") + d
            for op, to, value, d in inner
        )
        data = MULTISEND + encode(["bytes"], [packed])
        return _inputs(
            world,
            history,
            to=MULTISEND_CALL_ONLY,
            value=0,
            data=data,
            operation=Operation.DELEGATECALL,
            now=normal.time,
            signer=signer,
        )
    if kind == "unusual_signer":
        outsider = next((o for o in world.owners if o not in world.usual_signers), None) or _address(rng)
        return _inputs(world, history, to=normal.destination, value=normal.amount, now=normal.time, signer=outsider)
    raise ValueError(kind)


def _rates(flags: list[bool], truth: list[bool]) -> dict[str, Any]:
    tp = sum(f and t for f, t in zip(flags, truth))
    fp = sum(f and not t for f, t in zip(flags, truth))
    fn = sum(t and not f for f, t in zip(flags, truth))
    tn = sum(not f and not t for f, t in zip(flags, truth))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
    }


def run_evaluation(
    *,
    seed: int = 14,
    history_size: int = 240,
    benign_cases: int = 200,
    cases_per_kind: int = 25,
    templates: list[Path] | None = None,
    use_forest: bool = False,
) -> dict[str, Any]:
    rng = random.Random(seed)
    listed = sanctions.packaged()
    rows: list[dict[str, Any]] = []
    latencies: list[int] = []
    use_forest = bool(use_forest)
    for path in templates or sorted(POLICIES_DIR.glob("*.yaml")):
        world = _world(load_policy(path), rng)
        history = history_of(world, rng, history_size + benign_cases)
        trees = forest.train(history[:history_size], seed=seed) if use_forest else None
        for i in range(benign_cases):
            past = history[: history_size + i]
            current = history[history_size + i]
            model = anomaly.train(world.name, past)
            inputs = _inputs(
                world, past, to=current.destination, value=current.amount, now=current.time, signer=current.signers[0]
            )
            decision = _decide(inputs, listed, model, trees)
            latencies.append(decision.latency_us)
            rows.append({"template": world.name, "case": "benign", "decision": decision})
        past = history[:history_size]
        model = anomaly.train(world.name, past)
        for kind in RED_TEAM:
            for _ in range(cases_per_kind):
                inputs = _red_team(kind, world, past, rng, listed)
                decision = _decide(inputs, listed, model, trees)
                latencies.append(decision.latency_us)
                rows.append({"template": world.name, "case": kind, "decision": decision})
    return {**_report(rows, latencies, seed=seed), "isolation_forest": bool(use_forest)}


def _report(rows: list[dict[str, Any]], latencies: list[int], *, seed: int) -> dict[str, Any]:
    def has(decision: Decision, *codes: str) -> bool:
        return any(r.code in codes and r.severity.value != "info" for r in decision.reasons)

    def anomalous(decision: Decision) -> bool:
        return any(r.layer == "anomaly" and r.severity.value != "info" for r in decision.reasons)

    benign = [r for r in rows if r["case"] == "benign"]
    lookalike_truth = [r["case"].startswith("lookalike") for r in rows]
    anomaly_rows = [r for r in rows if r["case"] in ("benign", *ANOMALY_CASES)]
    detectors = {
        "lookalike": _rates([has(r["decision"], "lookalike_destination") for r in rows], lookalike_truth),
        "anomaly": _rates(
            [anomalous(r["decision"]) for r in anomaly_rows], [r["case"] != "benign" for r in anomaly_rows]
        ),
        "isolation_forest": _rates(
            [has(r["decision"], "isolation_outlier") for r in anomaly_rows],
            [r["case"] != "benign" for r in anomaly_rows],
        ),
        "sanctions": _rates(
            [has(r["decision"], "sanctioned_counterparty") for r in rows],
            [r["case"] == "sanctioned_counterparty" for r in rows],
        ),
        "engine": _rates(
            [r["decision"].verdict is not Verdict.ACCEPT for r in rows], [r["case"] != "benign" for r in rows]
        ),
    }
    red_team = {}
    for kind in RED_TEAM:
        cases = [r for r in rows if r["case"] == kind]
        red_team[kind] = {
            "cases": len(cases),
            "caught": sum(r["decision"].verdict is not Verdict.ACCEPT for r in cases),
            "denied": sum(r["decision"].verdict is Verdict.DENY for r in cases),
        }
    weak = [r for r in rows if r["case"] == "lookalike_4_4"]
    array = np.asarray(latencies, dtype=float) / 1000
    return {
        "seed": seed,
        "decisions": len(rows),
        "benign": len(benign),
        "benign_flagged": {
            "any": sum(r["decision"].verdict is not Verdict.ACCEPT for r in benign),
            "anomaly": sum(anomalous(r["decision"]) for r in benign),
        },
        "detectors": detectors,
        "red_team": red_team,
        "lookalike_levels_reported": sorted(
            {
                r.facts.get("levels", "")
                for row in weak
                for r in row["decision"].reasons
                if r.code == "lookalike_destination"
            }
        ),
        "latency_ms": {
            "n": len(latencies),
            "p50": float(np.percentile(array, 50)),
            "p95": float(np.percentile(array, 95)),
            "max": float(array.max()),
        },
    }


def write_report(report: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
