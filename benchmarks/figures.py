"""Documentation figures generated from the committed snapshots (never typed by hand).

    python -m benchmarks.figures            # show which figure blocks differ from the snapshots
    python -m benchmarks.figures --write    # rewrite them

A block sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->`` in the document
:data:`DOCUMENTS` names for it (README.md or a page under docs/); its text is exactly what :data:`BLOCKS`
renders from ``benchmarks/snapshots/``. tests/test_readme_figures.py fails when a block and its snapshot
disagree, when a block is missing or appears twice, or when a block sits in another document than its
own, so a benchmark re-run with ``--write`` and no docs update (or a figure edited by hand) cannot go
unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "benchmarks" / "snapshots"


def _snapshot(name: str) -> dict:
    return json.loads((SNAPSHOTS / f"{name}.json").read_text())


def _n(value: int) -> str:
    return f"{value:,}"


def guard_overhead() -> str:
    gas = _snapshot("guard")["gas"]
    targets, lean = _snapshot("guard")["targets"], _snapshot("guard")["lean_targets"]

    def target(key: str) -> str:
        return f"≤ {_n(targets[key]['target'])}" if key in targets else "—"

    def lean_target(key: str) -> str:
        if key not in lean:
            return "—"
        return f"≤ {_n(lean[key]['target'])}: {'met' if lean[key]['met'] else 'not met'}"

    def clone(key: str) -> str:
        twin = "clone_" + key
        return _n(gas[twin]) if twin in gas else "—"

    rows = [
        ("ETH, steady state", "overhead_eth_steady"),
        ("ERC-20, steady state", "overhead_erc20_steady"),
        (
            "ETH, first spend of a day (24 h after a day with a spend every hour; reads the bucket of the latest hour "
            "that left, in another ring slot than the one it writes: the costliest new hour)",
            "overhead_eth_first_of_day",
        ),
        ("ERC-20, first spend of a day (the same)", "overhead_erc20_first_of_day"),
        (
            "ETH, first spend in the next hour, its ring slot never used by a spend (a dedicated guard primed it at "
            "creation, a clone did not)",
            "overhead_eth_new_hour",
        ),
        (
            "ETH, first spend in a new hour two hours after the last spend",
            "overhead_eth_new_hour_after_2h_gap",
        ),
        ("ETH, first spend in a new hour, warm ring slot", "overhead_eth_new_hour_warm"),
        ("ERC-20, first spend in a new hour, warm ring slot", "overhead_erc20_new_hour_warm"),
        ("ETH, after a 12 h gap", "overhead_eth_after_12h_gap"),
        ("ERC-20, after a 12 h gap", "overhead_erc20_after_12h_gap"),
        ("ETH, after 27 idle hours (the whole window expired)", "overhead_eth_after_idle_day"),
        ("ERC-20, after 27 idle hours", "overhead_erc20_after_idle_day"),
        ("reference: no-op guard (same run)", "noop_overhead_eth_steady"),
        ("reference: a guard that only adds each value to one storage word (same run)", "counting_overhead_eth_steady"),
        (
            "reference: Zodiac-Roles-style guard, ETH (the same rules in storage, a 24 h refill allowance; same run)",
            "roles_overhead_eth_steady",
        ),
        ("reference: Zodiac-Roles-style guard, ERC-20 (same run)", "roles_overhead_erc20_steady"),
    ]
    lines = [
        "| transfer | dedicated guard overhead (gas) | clone guard overhead (gas) | target (dedicated) | issue 15 target |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {_n(gas[key])} | {clone(key)} | {target(key)} | {lean_target(key)} |" for label, key in rows
    ]
    return "\n".join(lines)


def vault_cost() -> str:
    data = _snapshot("vault-cost")
    shipped, both, even, priming = (
        data["guard_deployment_of_template"],
        data["creation_by_guard_deployment"],
        data["break_even_transactions"],
        data["clone_priming"],
    )
    layers = data["per_transfer_layers"]
    lines = [
        "| template | guard as shipped | creation, dedicated guard (ring primed) | creation, clone guard | "
        "priming a clone's ring later (optional) | break-even (transactions) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {shipped[name]} | {_n(c['dedicated'])} | {_n(c['clone'])} | {_n(priming[name])} | "
        f"{_n(even[name]) if even[name] else '—'} |"
        for name, c in both.items()
    ]
    target = next(iter(data["creation_target"].values()))["target"]
    met = [name for name, t in data["creation_target"].items() if t["met"]]
    lines += [
        "",
        f"Creation target ≤ {_n(target)} gas, met as shipped by: {', '.join(met) or 'none'}. One checked 2-of-3 ETH "
        f"transfer (steady state): plain Safe {_n(layers['plain_safe'])}, guard overhead {_n(layers['guard'])} "
        f"(dedicated) / {_n(layers['guard_clone'])} (clone), a Zodiac-Roles-style reference guard "
        f"{_n(layers['roles_style_reference_guard'])}; custody badges {_n(layers['badges_onchain'])} on chain "
        f"({layers['badges_onchain_count']} badges) or {_n(layers['badges_batched_100'])} batched at 100 per anchor; "
        f"anchoring the ledger head {_n(layers['ledger_anchor'])}.",
    ]
    return "\n".join(lines)


def attest_gas() -> str:
    data = _snapshot("attest")
    gas, derived, flow, floors = data["gas"], data["derived"], data["batched_template_flow"], data["floors"]
    lines = [
        "| | gas | per step |",
        "|---|---|---|",
        f"| on-chain KYC badge (delegated) | {_n(gas['onchain_kyc'])} | {_n(gas['onchain_kyc'])} |",
        f"| on-chain approval badge (delegated, ledger entry linked) | {_n(gas['onchain_approval'])} | "
        f"{_n(gas['onchain_approval'])} |",
        f"| on-chain execution badge (2 approvals + ledger entry linked) | {_n(gas['onchain_execution'])} | "
        f"{_n(gas['onchain_execution'])} |",
        f"| batch of 1 / 100 / 1,000 (one `timestamp(root)`) | {_n(gas['batch_100_anchor'])} | "
        f"{_n(round(derived['batch_1_per_step']))} / {derived['batch_100_per_step']:,.0f} / "
        f"**{derived['batch_1000_per_step']}** (target ≤ 5,000) |",
        f"| batched template: {flow['batched_flow_badges']} transfer badges, the flows anchor "
        f"{flow['batched_flow_anchored']} in {flow['batched_flow_eas_transactions']} EAS transaction | "
        f"{_n(flow['batched_flow_anchor'])} | **{derived['batched_flow_per_step']}** (target ≤ 5,000) |",
        f"| baseline, same run: EAS `multiTimestamp` of 100 UIDs | {_n(gas['baseline_multitimestamp_100'])} | "
        f"{_n(round(derived['multitimestamp_per_step']))} |",
        "",
        f"The least EAS charges for one on-chain attestation here: {_n(floors['eas_minimal_bytes32'])} gas (one "
        f"`bytes32`, no recipient or refUID), {_n(floors['eas_bytes32_with_recipient_and_ref'])} with a recipient "
        "and a refUID.",
    ]
    return "\n".join(lines)


def exit_gas() -> str:
    gas = _snapshot("exit")["gas"]
    rows = [
        ("initiate, 2-of-3 council signatures", "initiate_2_of_3"),
        ("cancel by an owner", "cancel_by_owner"),
        ("initiate again (a new request)", "initiate_again"),
        ("finalize: ETH + 3 ERC-20 to the custodian", "finalize_eth_and_3_erc20"),
    ]
    return "\n".join(["| operation | gas |", "|---|---|", *(f"| {label} | {_n(gas[key])} |" for label, key in rows)])


def foundation() -> str:
    data = _snapshot("foundation")
    gas, rates = data["gas"], data["rates_per_second"]
    return (
        f"Last committed figures (guarded 2-of-3 cold vault): vault creation {_n(gas['vault_create_2of3'])} gas "
        "(Safe, timelock clone,\nguard clone with the policy as its immutable arguments, and the vault's ExitModule "
        "clone); "
        f"2-of-3 ETH transfer\n{_n(gas['eth_transfer_2of3_first'])} (first) / {_n(gas['eth_transfer_2of3_steady'])} "
        f"(steady state); custody runs at about {rates['ratio_custody_over_raw']:.2f} of the raw loop's rate "
        f"({rates['custody_propose_sign2_execute']} vs\n{rates['raw_safe_eth_py_loop']} flows/s in the committed run)."
    )


def reconcile() -> str:
    data = _snapshot("reconcile")
    run, index = data["reconcile_synthetic"], data["indexing_real_anvil"]
    ours, full = run["ours_seconds"], index["ours_full_sync"]
    met = "met" if run["within_target"] else "**not met** in this run"
    load = ", ".join(str(x) for x in data["machine"]["load_average_at_start"])
    return (
        f"Reconciling {_n(run['bars'])} bars (CSV, fully validated, ids hashed) against {_n(run['events'])} "
        f"pre-indexed events took {ours['total']} s in the committed run (read + validate "
        f"{ours['read_validate_hash_bar_list']} s, load events {ours['load_events']} s, reconcile {ours['reconcile']} s; "
        f"target ≤ {run['target_seconds']} s: {met}) against {run['pandas_merge_baseline_seconds']} s for a pandas "
        f"version with the same C keccak over whole columns and a vectorised merge, which validates nothing "
        f"({run['ratio_pandas_over_ours']}×). Indexing {_n(index['events_indexed'])} real Anvil logs "
        f"({_n(index['BarAllocated']['events'])} `BarAllocated`, {_n(index['Transfer']['events'])} `Transfer`): "
        f"{_n(full['events_per_s'])} events/s end to end (fetch, decode, SQLite, cursor and block hashes) against "
        f"{_n(full['raw_eth_getlogs_eth_abi_same_events_per_s'])}/s for raw `eth_getLogs` decoded with eth_abi "
        f"({full['ratio_vs_raw_eth_abi']}×; fetch + decode alone {index['BarAllocated']['ratio_vs_raw_eth_abi']}× and "
        f"{index['Transfer']['ratio_vs_raw_eth_abi']}×) and {_n(full['web3_get_logs_same_events_per_s'])}/s for web3's "
        f"`contract.events.X.get_logs` ({full['ratio_vs_web3_get_logs']}×). Load average when the run started: {load} "
        "(2 cores shared with other work; the ratios compare both sides in the same run)."
    )


def audit() -> str:
    data = _snapshot("audit")
    appends, verify, index = data["appends"], data["verify"], data["indexing"]
    sqlite, postgres = appends["sqlite"], appends.get("postgresql")
    pg = (
        f" ({_n(postgres['single_appends_per_s'])}/s and {_n(postgres['bulk_entries_per_s'])}/s on PostgreSQL)"
        if postgres
        else ""
    )
    large = max(verify, key=int)
    small = min(verify, key=int)
    return (
        f"{_n(sqlite['single_appends_per_s'])} durable single appends/s and {_n(sqlite['bulk_entries_per_s'])} bulk "
        f"entries/s on SQLite{pg}; verifying {_n(int(small))} entries {verify[small]['verify_seconds']} s and "
        f"**{_n(int(large))} entries {verify[large]['verify_seconds']} s** (target ≤ 10 s); indexing "
        f"{_n(index['transfers'])} ERC-20 deposits into the ledger {index['ours_full_index_seconds']} s against "
        f"{index['raw_eth_getlogs_eth_abi_seconds']} s for raw `eth_getLogs` decoded with eth_abi "
        f"({index['ratio_full_index_vs_raw_eth_abi']}×; fetch + decode alone {index['ratio_fetch_decode_vs_raw_eth_abi']}×) "
        f"and {index['web3_contract_events_get_logs_seconds']} s for web3's `contract.events.Transfer().get_logs` "
        f"(**{index['ratio_full_index']}×**; fetch + decode alone {index['ratio_fetch_decode']}×)."
    )


def barlist_memory() -> str:
    data = _snapshot("barlist-memory")
    met = "within" if data["within_budget"] else "**over**"
    return (
        f"A {data['bar_list_bytes'] / 1e6:.1f} MB bar list ({_n(data['bars'])} bars) reconciled against "
        f"{_n(data['events'])} indexed on-chain events peaked at **{data['full_reconcile_peak_rss_mb']} MB** resident "
        f"in the committed run ({met} the {data['budget_mb']} MB budget), the interpreter and its imports included; "
        f"{data['read_validate_peak_rss_mb']} MB once the list was read, validated and hashed."
    )


def startup() -> str:
    data = _snapshot("startup")
    after, before, targets, floors = (
        data["after"],
        data.get("before"),
        data["targets_seconds"],
        data["floors_wall_seconds"],
    )
    rows = [
        ("`import custody`", "import_custody"),
        ("`custody --help`", "custody_help"),
        ("`custody vault list` (running local chain, one vault)", "vault_list"),
    ]

    def target(key: str) -> str:
        if key not in targets:
            return "—"
        met = "met" if after[key]["wall_seconds"] <= targets[key] else "**not met** in this run"
        return f"≤ {targets[key]} s: {met}"

    def heavy(key: str) -> str:
        return ", ".join(after[key]["heavy_imported"]) or "none"

    head = f"| start-up of | before ({data['before_rev']}) | after | target | heavy libraries imported (after) |"
    lines = [head, "|---|---|---|---|---|"]
    lines += [
        f"| {label} | {before[key]['wall_seconds'] if before else '—'} s | {after[key]['wall_seconds']} s "
        f"| {target(key)} | {heavy(key)} |"
        for label, key in rows
    ]
    load = ", ".join(str(x) for x in data["load_average"])
    lines += [
        "",
        f"Median of {data['runs']} fresh interpreters each. Floors in the same run: `python -c pass` "
        f"{floors['python_pass']} s, `import web3` {floors['import_web3']} s, `import custody.vault.service` (what "
        f"`vault list` calls) {floors['import_vault_service']} s. Load average at the start and the end: {load} "
        "(2 cores shared with other work).",
    ]
    return "\n".join(lines)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def risk() -> str:
    data = _snapshot("risk")
    offline, live = data["offline"], data["live_gate_latency_ms"]
    detectors, red_team = offline["detectors"], offline["red_team"]
    lookalike, anomaly = detectors["lookalike"], detectors["anomaly"]
    benign, flagged = offline["benign"], offline["benign_flagged"]["anomaly"]
    red_team_cases = offline["decisions"] - benign
    at_levels = " and ".join(
        f"{_n(red_team[key]['caught'])} of {_n(red_team[key]['cases'])} at {level}"
        for key, level in (("lookalike_4_4", "4+4"), ("lookalike_6_6", "6+6"))
    )
    return (
        f"Committed figures (`benchmarks/snapshots/risk.json`, seed {offline['seed']}, {_n(benign)} benign transfers, "
        f"{_n(red_team_cases)} red-team cases): lookalikes {_pct(lookalike['recall'])} recall ({at_levels}), FPR "
        f"{_pct(lookalike['fpr'])}; anomaly layer {_n(flagged)} of {_n(benign)} benign flagged "
        f"({_pct(flagged / benign)}), {_pct(anomaly['recall'])} of the {_n(anomaly['tp'] + anomaly['fn'])} injected "
        f"anomalies (burst, off-hours drain, new-destination drain, unusual signer); engine p95 "
        f"{offline['latency_ms']['p95']:.1f} ms offline. The live gate on Anvil (chain reads, ledger history, recording) "
        f"measured p50 {live['p50']:.1f} ms, p95 {live['p95']:.1f} ms over {_n(live['n'])} decisions on a 2-core machine "
        "shared with other test runs — that figure is for reference, not the target."
    )


def risk_forest() -> str:
    data = _snapshot("risk")
    without, forest = data["offline"], data["with_isolation_forest"]
    caught, fp = forest["isolation_forest"], forest["isolation_forest"]["fp"]
    beyond = (
        "no recall beyond the baseline's, which already catches every one"
        if forest["anomaly"]["recall"] == 1.0
        else f"the baseline layer alone catches {_pct(forest['anomaly']['recall'])}"
    )
    return (
        f"In the committed benchmark it raises the offline p95 from {without['latency_ms']['p95']:.1f} ms to "
        f"{forest['latency_ms']['p95']:.1f} ms (the `with_isolation_forest` block of `benchmarks/snapshots/risk.json`), "
        f"and on the generated histories it catches {_pct(caught['recall'])} of the "
        f"{_n(caught['tp'] + caught['fn'])} injected anomalies with {_n(fp)} false "
        f"positive{'' if fp == 1 else 's'}: {beyond}."
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "guard-overhead": guard_overhead,
    "vault-cost": vault_cost,
    "attest-gas": attest_gas,
    "exit-gas": exit_gas,
    "foundation": foundation,
    "reconcile": reconcile,
    "audit": audit,
    "barlist-memory": barlist_memory,
    "startup": startup,
    "risk": risk,
    "risk-forest": risk_forest,
}

#: where each block lives, relative to the repository root
DOCUMENTS: dict[str, str] = {
    "guard-overhead": "docs/guard.md",
    "vault-cost": "docs/benchmarks.md",
    "attest-gas": "docs/attestations.md",
    "exit-gas": "docs/resilience.md",
    "foundation": "docs/benchmarks.md",
    "reconcile": "docs/reconciliation.md",
    "audit": "docs/audit-ledger.md",
    "barlist-memory": "docs/reconciliation.md",
    "startup": "docs/benchmarks.md",
    "risk": "docs/risk.md",
    "risk-forest": "docs/risk.md",
}

#: every document searched for stray blocks (a block copied into another page is an error)
SEARCHED = ("README.md", "docs/*.md")


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(\n<!-- /figures:{re.escape(name)} -->)", re.S)


def blocks(text: str) -> dict[str, str]:
    """The current text of every figure block in ``text`` (missing blocks are absent)."""
    found = {}
    for name in BLOCKS:
        match = _pattern(name).search(text)
        if match:
            found[name] = match.group(2)
    return found


def documents(root: Path | None = None) -> list[Path]:
    """Every document that may hold figure blocks, under ``root`` (default: the repository)."""
    root = ROOT if root is None else root
    return sorted({path for pattern in SEARCHED for path in root.glob(pattern)})


def misplaced(root: Path | None = None) -> list[str]:
    """Blocks found in a document other than their own, or more than once in their own (as sentences)."""
    root = ROOT if root is None else root
    problems = []
    for path in documents(root):
        relative = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for name in BLOCKS:
            count = len(_pattern(name).findall(text))
            if count and relative != DOCUMENTS[name]:
                problems.append(f"{relative} holds figure block {name!r}, which belongs in {DOCUMENTS[name]}")
            elif relative == DOCUMENTS[name] and count != 1:
                problems.append(f"{relative} has {count} blocks named {name!r} (expected exactly one)")
    for name, relative in DOCUMENTS.items():
        if not (root / relative).is_file():
            problems.append(f"{relative} (home of figure block {name!r}) does not exist")
    return problems


def render(text: str, names: list[str] | None = None) -> str:
    """``text`` with the named blocks (default: all) rendered from the snapshots; each must occur once."""
    for name in BLOCKS if names is None else names:
        body = BLOCKS[name]()
        text, count = _pattern(name).subn(lambda m, body=body: m.group(1) + body + m.group(3), text)
        if count != 1:
            raise SystemExit(f"{DOCUMENTS[name]} has {count} blocks named {name!r} (expected exactly one)")
    return text


def stale(root: Path | None = None) -> dict[str, list[str]]:
    """Per document, the blocks whose text differs from what the snapshots render."""
    root = ROOT if root is None else root
    found: dict[str, list[str]] = {}
    for relative in sorted(set(DOCUMENTS.values())):
        names = [name for name, home in DOCUMENTS.items() if home == relative]
        text = (root / relative).read_text(encoding="utf-8")
        current = blocks(text)
        differing = [name for name in names if current.get(name) != BLOCKS[name]()]
        if differing:
            found[relative] = differing
    return found


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the figure blocks from the snapshots")
    args = parser.parse_args(argv)
    root = ROOT if root is None else root
    problems = misplaced(root)
    if problems:
        print("\n".join(problems))
        return 1
    differing = stale(root)
    for relative, names in differing.items():
        if args.write:
            path = root / relative
            path.write_text(render(path.read_text(encoding="utf-8"), names), encoding="utf-8")
            print(f"rewrote {', '.join(names)} in {relative}")
        else:
            print(f"stale figures in {relative}: {', '.join(names)} (run python -m benchmarks.figures --write)")
    return 1 if differing and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
