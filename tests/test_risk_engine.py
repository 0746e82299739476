"""The risk engine's layers on prepared inputs (no chain): firewall rules, lookalikes and precursors,
sanctions parsing, the anomaly baseline and its integrity, the template section, the evaluation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.policy.risk_section import DEFAULT_SETTINGS, RiskSettings
from custody.policy.template import check_policy_text, load_policy, load_policy_text
from custody.risk import anomaly, firewall, poisoning, sanctions
from custody.risk.engine import Prepared, decide
from custody.risk.evaluation import lookalike_of, run_evaluation
from custody.risk.inputs import Inbound, Movement, RiskInputs
from custody.safe.safe_tx import SafeTx
from custody.types import ZERO_ADDRESS, Operation
from custody.vault.decode import MULTISEND, decode_safe_call
from tests.conftest import FIXTURES, POLICIES

SAFE = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
MULTISEND_CALL_ONLY = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
NOW = dt.datetime(2026, 6, 3, 11, 0, tzinfo=dt.UTC)  # a Wednesday, 11:00 UTC
hex40 = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)


def _inputs(to=PRIME, value=10**18, data=b"", operation=Operation.CALL, *, known=None, history=(), **changes):
    tx_changes = {"nonce": 0} | {
        k: changes.pop(k) for k in ("gas_price", "gas_token", "refund_receiver", "nonce") if k in changes
    }
    safe_tx = SafeTx(safe=SAFE, chain_id=31337, to=to, value=value, data=data, operation=operation, **tx_changes)
    decoded = decode_safe_call(None, to, value, data, operation, safe=SAFE)
    base = RiskInputs(
        stage="sign", safe_tx=safe_tx, decoded=decoded, now=NOW, settings=changes.pop("settings", DEFAULT_SETTINGS),
        owners=(OWNER,), proposer=OWNER, signer=OWNER, known={PRIME: "prime-broker"} if known is None else known,
        history=tuple(history), has_code={}, balances={"ETH": 100 * 10**18},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _codes(inputs, layer=firewall.check) -> dict[str, str]:
    return {r.code: r.severity.value for r in layer(inputs)}


def _batch(*calls) -> bytes:
    packed = b"".join(
        bytes([op]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(data).to_bytes(32, "big") + data
        for op, to, value, data in calls
    )
    return MULTISEND + encode(["bytes"], [packed])


# -- address poisoning -----------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(known=hex40, seed=st.integers(0, 2**32))
def test_every_4_plus_4_lookalike_is_denied(known, seed):
    target = to_checksum_address("0x" + known)
    fake = lookalike_of(target, random.Random(seed), prefix=4, suffix=4)
    found = poisoning.check(_inputs(to=fake, known={target: "treasury"}))
    (hit,) = [r for r in found if r.code == "lookalike_destination"]
    assert hit.severity.value == "deny" and hit.facts["resembles"] == target and "4+4" in hit.facts["levels"]


def test_levels_3_3_and_6_6_are_reported_and_3_3_alone_is_not_a_deny():
    rng = random.Random(7)
    six = lookalike_of(PRIME, rng, prefix=6, suffix=6)
    (strong,) = [r for r in poisoning.check(_inputs(to=six)) if r.code == "lookalike_destination"]
    assert strong.facts["levels"] == "3+3,4+4,6+6"
    three = lookalike_of(PRIME, rng, prefix=3, suffix=3)
    weak = {r.code: r for r in poisoning.check(_inputs(to=three))}
    assert "lookalike_destination" not in weak and weak["weak_lookalike"].severity.value == "info"
    assert weak["weak_lookalike"].facts["levels"] == "3+3"


def test_small_edit_distance_is_a_lookalike_and_past_destinations_count():
    body = PRIME.lower()[2:]
    one_off = to_checksum_address("0x" + "9" + body[1:])  # first character changed: no 4+4 prefix, distance 1
    assert poisoning.bounded_edit_distance(one_off.lower()[2:], body, 2) == 1
    assert _codes(_inputs(to=one_off), poisoning.check) == {"lookalike_destination": "deny"}
    past = Movement(NOW - dt.timedelta(days=3), "ETH", 10**18, "0x1234567890AbcdEF1234567890aBcdef12345678")
    fake = lookalike_of(past.destination, random.Random(3), prefix=4, suffix=4)
    found = poisoning.check(_inputs(to=fake, known={}, history=[past]))
    assert [r.facts["label"] for r in found if r.code == "lookalike_destination"] == ["past destination"]


def test_random_destinations_are_not_lookalikes():
    rng = random.Random(11)
    book = {
        to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))): "x" for _ in range(50)
    }
    flagged = 0
    for _ in range(2000):
        destination = to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)))
        flagged += any(r.code == "lookalike_destination" for r in poisoning.check(_inputs(to=destination, known=book)))
    assert flagged == 0


def test_precursors_zero_value_dust_and_counterfeit_tokens_from_a_lookalike():
    rng = random.Random(5)
    poisoner = lookalike_of(PRIME, rng, prefix=4, suffix=4)
    for asset, amount, kind in (("ETH", 0, "zero-value"), ("ETH", 10**9, "dust"),
                                ("0x00000000000000000000000000000000000Fa4e0", 10**18, "counterfeit-token")):  # fmt: skip
        inbound = (Inbound(NOW - dt.timedelta(hours=2), poisoner, asset, amount),)
        paying_poisoner = {r.code: r for r in poisoning.check(_inputs(to=poisoner, inbound=inbound))}
        assert paying_poisoner["destination_sent_precursor"].facts["precursor"] == kind
        elsewhere = {r.code: r for r in poisoning.check(_inputs(to=PRIME, inbound=inbound))}
        assert elsewhere["poisoning_precursor"].severity.value == "info"
    real = (Inbound(NOW, poisoner, "ETH", 5 * 10**18),)  # a real payment is no precursor
    assert "poisoning_precursor" not in _codes(_inputs(to=PRIME, inbound=real), poisoning.check)


# -- firewall --------------------------------------------------------------------------------------------------
def test_delegatecall_anywhere_and_config_changes_hidden_in_a_multisend_are_denied():
    assert (
        _codes(_inputs(to=PRIME, data=b"\x12\x34\x56\x78", operation=Operation.DELEGATECALL))["delegatecall"] == "deny"
    )
    add_owner = selector("addOwnerWithThreshold(address,uint256)") + encode(["address", "uint256"], [PRIME, 1])
    hidden = _batch((0, PRIME, 10**17, b""), (0, SAFE, 0, add_owner))
    codes = _codes(_inputs(to=MULTISEND_CALL_ONLY, value=0, data=hidden, operation=Operation.DELEGATECALL))
    assert codes["config_change_in_multisend"] == "deny" and "delegatecall" not in codes
    nested = _batch((1, PRIME, 0, b"\xde\xad\xbe\xef"))
    assert (
        _codes(_inputs(to=MULTISEND_CALL_ONLY, value=0, data=nested, operation=Operation.DELEGATECALL))["delegatecall"]
        == "deny"
    )
    for function, args, types in (("changeThreshold(uint256)", [1], ["uint256"]), ("setGuard(address)", [ZERO_ADDRESS], ["address"]),
                                  ("enableModule(address)", [PRIME], ["address"]), ("setFallbackHandler(address)", [PRIME], ["address"])):  # fmt: skip
        assert (
            _codes(_inputs(to=SAFE, value=0, data=selector(function) + encode(types, args)))["config_change"] == "deny"
        )


def test_gas_refund_calldata_to_an_eoa_and_token_calls_to_non_contracts():
    assert _codes(_inputs(gas_price=1))["gas_refund"] == "deny"
    assert _codes(_inputs(refund_receiver=PRIME))["gas_refund"] == "deny"
    eoa = _inputs(to=PRIME, value=0, data=b"\x01\x02\x03\x04", has_code={PRIME: False})
    assert _codes(eoa)["calldata_to_eoa"] == "deny"
    transfer = selector("approve(address,uint256)") + encode(["address", "uint256"], [PRIME, 2**256 - 1])
    token = "0x00000000000000000000000000000000000Fa4e0"
    codes = _codes(_inputs(to=token, value=0, data=transfer, has_code={token: False}, known={}))
    assert codes["token_call_to_non_contract"] == "deny" and codes["unlimited_approval"] == "warn"
    assert codes["unlisted_approval"] == "warn"


def test_hash_mismatch_nonces_proposer_destinations_and_messages():
    tampered = _inputs(supplied_hash=b"\x11" * 32)
    (mismatch,) = [r for r in firewall.check(tampered) if r.code == "hash_mismatch"]
    assert (
        mismatch.severity.value == "deny" and mismatch.facts["recomputed"] == "0x" + tampered.safe_tx.safe_tx_hash.hex()
    )
    assert _codes(_inputs(nonce=3, onchain_nonce=3, queued_nonces=(3,)))["nonce_duplicate"] == "warn"
    assert _codes(_inputs(nonce=5, onchain_nonce=3, queued_nonces=(3,)))["nonce_gap"] == "warn"
    assert "nonce_gap" not in _codes(_inputs(nonce=5, onchain_nonce=3, queued_nonces=(3, 4)))
    assert _codes(_inputs(proposer="keystore:" + PRIME))["proposer_not_owner"] == "warn"
    delegate = _inputs(proposer=PRIME, settings=RiskSettings(delegates=(PRIME,)))
    assert "proposer_not_owner" not in _codes(delegate)
    stranger = "0x" + "5A" * 20
    assert _codes(_inputs(to=to_checksum_address(stranger), known={}))["first_time_destination"] == "warn"
    assert _codes(_inputs(to=PRIME))["first_time_listed_destination"] == "info"
    message = selector("approveMessage(bytes32,bytes32)") + b"\x00" * 64
    assert _codes(_inputs(to=PRIME, value=0, data=message, has_code={PRIME: True}))["message_signing"] == "warn"


def test_template_overrides_rule_severity():
    strict = RiskSettings(rule_severity={"first_time_listed_destination": "deny"})
    prepared = Prepared(_inputs(settings=strict), sanctions.packaged(), anomaly.train("v", []))
    decision = decide("sign", "0x00", lambda: prepared, settings=strict)
    assert decision.verdict.value == "deny" and decision.blocking()[0].code == "first_time_listed_destination"


# -- sanctions -------------------------------------------------------------------------------------------------
def test_sdn_xml_and_csv_parsers_keep_only_evm_digital_currency_addresses():
    xml = sanctions.read_file(FIXTURES / "risk" / "sdn_test.xml")
    assert sorted(xml.addresses) == sorted([PRIME.lower(), "0x000000000000000000000000000000000000beef"])
    assert xml.date == "2026-11-28" and "ETH" in xml.addresses[PRIME.lower()]
    csv_list = sanctions.read_file(FIXTURES / "risk" / "sdn_test_delisted.csv")
    assert sorted(csv_list.addresses) == [
        "0x000000000000000000000000000000000000beef",
        "0x000000000000000000000000000000000000dead",
    ]
    advanced = b"""<Sanctions xmlns="https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ADVANCED_XML">
      <ReferenceValueSets><FeatureTypeValues><FeatureType ID="345">Digital Currency Address - ETH</FeatureType>
      <FeatureType ID="8">Birthdate</FeatureType></FeatureTypeValues></ReferenceValueSets>
      <Feature ID="1" FeatureTypeID="345"><FeatureVersion ID="2"><VersionDetail DetailTypeID="1432">0x000000000000000000000000000000000000dEaD</VersionDetail></FeatureVersion></Feature>
      <Feature ID="3" FeatureTypeID="8"><FeatureVersion ID="4"><VersionDetail>0x000000000000000000000000000000000000bEEF</VersionDetail></FeatureVersion></Feature>
    </Sanctions>"""  # fmt: skip
    assert list(sanctions.parse_sdn_xml(advanced, source="adv").addresses) == [
        "0x000000000000000000000000000000000000dead"
    ]
    with pytest.raises(Exception, match="not well-formed XML"):
        sanctions.parse_sdn_xml(b"<sdnList><sdnEntry>", source="broken")


def test_the_packaged_snapshot_states_its_source_and_hash():
    snapshot = sanctions.packaged()
    doc = json.loads((sanctions.resources.files("custody.risk") / "data" / sanctions.SNAPSHOT).read_text())
    assert doc["sha256"] == snapshot.sha256 and doc["count"] == len(snapshot.addresses) > 100
    assert "OFAC SDN" in snapshot.source and "0xB10C" in snapshot.source
    assert all(a == a.lower() and len(a) == 42 for a in snapshot.addresses)


# -- anomaly baseline ------------------------------------------------------------------------------------------
def _office_history(n: int = 60) -> list[Movement]:
    """Three transfers a weekday (10:00, 12:00, 14:00 UTC), Monday to Friday."""
    start = dt.datetime(2026, 4, 6, 10, tzinfo=dt.UTC)  # a Monday
    found = []
    for i in range(n):
        day = i // 3
        when = start + dt.timedelta(days=7 * (day // 5) + day % 5, hours=2 * (i % 3))
        found.append(Movement(when, "ETH", 10**18 + i * 10**15, PRIME, (OWNER,)))
    return found


def test_model_files_are_hashed_and_a_changed_file_is_refused(tmp_path):
    model = anomaly.train("ops", _office_history(), version=3)
    path = anomaly.save(model, tmp_path)
    assert anomaly.load(tmp_path, "ops") == model and path.name == "ops.v3.json"
    doc = json.loads(path.read_text())
    doc["model"]["hour_of_day"][3] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(anomaly.ModelError, match="does not match its recorded sha256"):
        anomaly.load(tmp_path, "ops")


def test_anomaly_features_flag_off_hours_bursts_outliers_and_unusual_signers():
    history = _office_history()
    model = anomaly.train("ops", history)
    usual = _inputs(history=history, now=history[-1].time + dt.timedelta(days=7))  # same weekday and hour
    reasons, features, _score = anomaly.score(usual, model)
    assert reasons == [] and features["hour_of_day_count"] > 0
    night = dataclasses.replace(usual, now=usual.now.replace(hour=3))
    assert [r.code for r in anomaly.score(night, model)[0]] == ["off_hours"]
    large = _inputs(value=60 * 10**18, history=history, now=usual.now)
    assert {r.code for r in anomaly.score(large, model)[0]} == {"amount_outlier", "balance_drain"}
    burst = [Movement(usual.now - dt.timedelta(minutes=m), "ETH", 10**18, PRIME, (OWNER,)) for m in range(1, 9)]
    rushed = dataclasses.replace(usual, history=(*history, *burst))
    assert "burst" in {r.code for r in anomaly.score(rushed, model)[0]}
    outsider = dataclasses.replace(usual, signer=PRIME)
    assert [r.code for r in anomaly.score(outsider, model)[0]] == ["unusual_signer"]
    few = anomaly.train("ops", history[:10])
    assert anomaly.score(night, few)[0] == [] and anomaly.score(night, few)[1]["insufficient_history"]


# -- template section ------------------------------------------------------------------------------------------
def test_risk_section_is_parsed_and_checked():
    base = (POLICIES / "hot.yaml").read_text()
    policy = load_policy_text(base + "risk:\n  timeout_ms: 500\n  warn:\n    extra_signers: 2\n  lookalike: {prefix: 5, suffix: 5}\n"
                              "  rules: {message_signing: deny}\n  reporting_windows: {US: 30d}\n")  # fmt: skip
    risk = policy.risk
    assert (risk.timeout_ms, risk.warn_extra_signers, risk.lookalike_prefix, risk.on_error) == (500, 2, 5, "deny")
    assert risk.rule_severity == {"message_signing": "deny"} and risk.reporting_windows == {"US": 30 * 86400}
    assert load_policy_text(base).risk == DEFAULT_SETTINGS and DEFAULT_SETTINGS.on_error == "deny"
    problems = {p.field: p.message for p in check_policy_text(
        base + "risk:\n  on_error: accept\n  timeout_ms: 0\n  deny: {proceed: anyway}\n  rules: {delegatecall: ignore}\n")}  # fmt: skip
    assert problems["risk.on_error"] == "must be one of deny, warn, got 'accept'"
    assert problems["risk.timeout_ms"] == "must be at least 1, got 0"
    assert "only path past a Deny is 'timelock'" in problems["risk.deny.proceed"]
    assert problems["risk.rules.delegatecall"] == "must be one of info, warn, deny"


# -- evaluation ------------------------------------------------------------------------------------------------
def test_evaluation_meets_the_detection_targets_on_generated_histories():
    report = run_evaluation(seed=3, history_size=150, benign_cases=60, cases_per_kind=10)
    assert report["red_team"]["lookalike_4_4"]["caught"] == report["red_team"]["lookalike_4_4"]["cases"] == 40
    assert report["detectors"]["lookalike"]["fpr"] < 0.01
    assert report["benign_flagged"]["anomaly"] <= 0.005 * report["benign"]
    assert report["detectors"]["anomaly"]["recall"] >= 0.8
    assert all(v["caught"] == v["cases"] for k, v in report["red_team"].items() if k != "unusual_signer")


# -- optional IsolationForest (custody[risk-ml], installed by scripts/bootstrap) ---------------------------------
def test_isolation_forest_flags_an_isolated_transfer_and_its_file_is_hash_checked(tmp_path):
    from custody.risk import forest
    from custody.risk.evaluation import _world, history_of
    from custody.risk.forest import vector

    world = _world(load_policy(POLICIES / "hot.yaml"), random.Random(2))
    moves = history_of(world, random.Random(2), 340)
    trees = forest.train(moves[:240])
    assert trees is not None and trees.rows == 230 and forest.train(moves[:20]) is None
    held_out = [trees.flags(vector(m.asset, m.amount, m.destination, m.time, moves[:240 + i]))[0]
                for i, m in enumerate(moves[240:])]  # fmt: skip
    assert sum(held_out) <= 2  # ordinary transfers of the same vault are (almost) never isolated
    last = moves[239]
    night = (last.time + dt.timedelta(days=(5 - last.time.weekday()) % 7 or 7)).replace(hour=2)
    drain = vector("ETH", 300 * 10**18, last.destination, night, moves[:240])
    assert trees.flags(drain)[0]
    model = anomaly.train(world.name, moves[:240])
    odd = _inputs(to=last.destination, value=300 * 10**18, history=moves[:240], now=night)
    assert "isolation_outlier" in [r.code for r in anomaly.score(odd, model, trees)[0]]
    sha = forest.dump(trees, tmp_path / "ops.forest.joblib")
    assert forest.load(tmp_path / "ops.forest.joblib", sha).threshold == trees.threshold
    (tmp_path / "ops.forest.joblib").write_bytes((tmp_path / "ops.forest.joblib").read_bytes() + b"\x00")
    with pytest.raises(Exception, match="does not match its recorded sha256"):
        forest.load(tmp_path / "ops.forest.joblib", sha)
