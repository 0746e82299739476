"""Policy templates: the shipped four validate; each broken fixture fails with its specific message."""

import json

import pytest

from custody.exceptions import TemplateError
from custody.policy.explain import controls_index, rules
from custody.policy.template import check_policy, load_policy, load_policy_text, parse_duration
from tests.conftest import FIXTURES, POLICIES

BROKEN = FIXTURES / "broken_policies"

EXPECTED = {
    "01_unknown_key.yaml": (9, "owners.treshold", "unknown key 'treshold' (did you mean 'threshold'?)"),
    "02_bad_checksum.yaml": (11, "owners.signers[0].address", "has a bad EIP-55 checksum"),
    "03_limit_over_daily.yaml": (24, "assets[0].per_tx_limit", "per-transaction limit is greater than the daily limit"),
    "04_overlapping_windows.yaml": (49, "freeze_windows[1]", "overlaps freeze_windows[0]"),
    "05_threshold_over_owners.yaml": (9, "owners.threshold", "threshold 3 is greater than the 2 owner(s)"),
    "06_duplicate_owner.yaml": (13, "owners.signers[1]", "is listed twice"),
    "07_bad_risk_class.yaml": (5, "risk_class", "must be one of hot, warm, cold, deep-cold, got 'lukewarm'"),
    "08_cold_without_allowlist.yaml": (25, "assets[0].allowlist", "a cold vault must allowlist its destinations"),
    "09_bad_duration.yaml": (18, "timelock.delay", "'one hour' is not a duration"),
    "10_missing_timelock_operation.yaml": (
        19,
        "timelock.operations",
        "must include the configuration changes modules, guard, fallback_handler",
    ),
    "11_window_ends_before_start.yaml": (46, "freeze_windows[0].end", "must be after start"),
    "12_limit_too_precise.yaml": (36, "assets[1].per_tx_limit", "has 7 decimal places; dUSD allows at most 6"),
    "13_erc20_without_decimals.yaml": (32, "assets[1].decimals", "is required for an ERC-20 asset"),
    "14_not_yaml.yaml": (10, "<document>", "not valid YAML"),
    "15_cold_timelock_too_short.yaml": (
        20,
        "timelock.delay",
        "a cold vault needs a timelock delay of at least 86400s, got 7200s",
    ),
    "16_bad_control_id.yaml": (20, "timelock.controls[0]", "control id 'SOC2 CC8.1' must be"),
    "17_exit_quorum_too_high.yaml": (56, "exit.quorum", "quorum 5 is greater than the 3 owners"),
    "19_not_utf8.yaml": (6, "<document>", "not valid UTF-8"),
    "20_attester_unknown_step.yaml": (42, "attestations.attesters[1].steps[1]", "unknown step 'audit'"),
    "21_emit_without_attester.yaml": (43, "attestations.emit[1]", "no attester is authorised for 'oob_confirmation'"),
}


@pytest.mark.parametrize("name", ["hot.yaml", "warm.yaml", "cold.yaml", "deep-cold.yaml"])
def test_shipped_templates_are_valid(name):
    assert check_policy(POLICIES / name) == []
    policy = load_policy(POLICIES / name)
    assert policy.risk_class == name.removesuffix(".yaml")
    assert all(rule.controls for rule in rules(policy)), "every rule must name the controls it serves"


def test_one_template_per_risk_class():
    classes = sorted(load_policy(p).risk_class for p in POLICIES.glob("*.yaml"))
    assert classes == ["cold", "deep-cold", "hot", "warm"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_template_fails_specifically(name):
    line, field, message = EXPECTED[name]
    problems = check_policy(BROKEN / name)
    assert problems, f"{name} validated"
    first = problems[0]
    assert (first.file, first.line, first.field) == (str(BROKEN / name), line, field)
    assert message in first.message
    with pytest.raises(TemplateError, match="problem"):
        load_policy(BROKEN / name)


def test_every_fixture_has_an_expectation():
    assert {p.name for p in BROKEN.iterdir()} == set(EXPECTED) | {"18_many_problems.yaml"}


def test_all_problems_are_reported_in_one_run():
    problems = check_policy(BROKEN / "18_many_problems.yaml")
    assert [(p.line, p.field) for p in problems] == [
        (5, "risk_class"),
        (9, "owners.threshold"),
        (24, "assets[0].per_tx_limit"),
    ]


def test_cli_check_reports_file_line_field_and_exit_code(run_cli):
    ok = run_cli("policy", "check", *[str(p) for p in sorted(POLICIES.glob("*.yaml"))])
    assert ok.exit_code == 0 and ok.stdout.count("ok ") == 4
    bad = run_cli("policy", "check", str(BROKEN / "05_threshold_over_owners.yaml"), "--json")
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    (problem,) = report["files"][str(BROKEN / "05_threshold_over_owners.yaml")]
    assert problem == {
        "file": str(BROKEN / "05_threshold_over_owners.yaml"), "line": 9, "field": "owners.threshold",
        "message": "threshold 3 is greater than the 2 owner(s)",
    }  # fmt: skip


def test_cli_explain_maps_rules_to_controls(run_cli):
    out = run_cli("policy", "explain", str(POLICIES / "cold.yaml"), "--json")
    data = json.loads(out.stdout)
    ids = [r["id"] for r in data["rules"]]
    assert ids[:2] == ["owners", "timelock"]
    assert "asset.ETH.allowlist" in ids and "exit" in ids
    assert data["controls"]["DORA-Art11"] == ["exit"]
    human = run_cli("policy", "explain", str(POLICIES / "hot.yaml"))
    assert "at most 5 ETH per transaction" in human.stdout


def test_controls_index_inverts_rules():
    policy = load_policy(POLICIES / "warm.yaml")
    index = controls_index(rules(policy))
    assert "allowed_hours" in index["SOC2-CC6.8"]


@pytest.mark.parametrize(
    "text,seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), ("1w", 604800)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_unquoted_hex_address_is_read_as_text_not_integer():
    text = (POLICIES / "hot.yaml").read_text()
    policy = load_policy_text(text, "hot.yaml")
    assert policy.owners[0].address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_empty_template():
    with pytest.raises(TemplateError, match="the template is empty"):
        load_policy_text("", "empty.yaml")
