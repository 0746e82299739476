"""custody risk explain|score|train|eval|lists|cases — the pre-sign risk engine."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app
from custody.risk import service


@click.group("risk")
def risk_group() -> None:
    """Pre-sign risk engine: verdicts (Accept / Warn / Deny), models, sanctions lists, cases."""


def render_decision(c: Console, d: dict[str, Any]) -> None:
    colour = {"accept": "green", "warn": "yellow", "deny": "bold red"}[d["verdict"]]
    c.print(f"  [{colour}]{d['verdict'].upper()}[/{colour}] at {d['stage']} ({d['latency_us'] / 1000:.1f} ms)")
    for r in d["reasons"]:
        facts = ", ".join(f"{k}={v}" for k, v in r["facts"].items())
        c.print(
            f"    {r['severity']:<5} {r['layer']:<9} {r['code']}: {r['message']}" + (f" [{facts}]" if facts else "")
        )
    scores = ", ".join(f"{k} {v}" for k, v in d["scores"].items())
    c.print(f"    scores: {scores}")
    if d["features"]:
        c.print("    features: " + ", ".join(f"{k}={v}" for k, v in d["features"].items()))
    c.print("    versions: " + ", ".join(f"{k}={v}" for k, v in d["versions"].items()))


@risk_group.command()
@click.argument("ref", metavar="ID")
@json_option
@pass_app
def explain(app: AppContext, ref: str) -> None:
    """Every recorded decision about proposal ID, with reasons, scores, features and versions."""
    data = service.explain(app.session(), ref)

    def render(c: Console) -> None:
        c.print(f"[bold]proposal {data['proposal']}[/bold] ({data['state']}) {data['safe_tx_hash']}")
        for d in data["decisions"]:
            c.print(f"  ledger entry {d['seq']} at {d['time']} by {d['actor']}")
            render_decision(c, d)
        if not data["decisions"]:
            c.print("  no decision recorded")

    app.emit(data, render)


@risk_group.command()
@click.argument("ref", metavar="ID")
@json_option
@pass_app
def score(app: AppContext, ref: str) -> None:
    """Decide again now for open proposal ID (recorded, refuses nothing)."""
    data = service.score(app.session(), ref)
    app.emit(data, lambda c: render_decision(c, data))


@risk_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.option("--forest", is_flag=True, help="Also fit an IsolationForest (needs the custody[risk-ml] extra).")
@json_option
@pass_app
def train(app: AppContext, vault_ref: str, forest: bool) -> None:
    """Train VAULT's anomaly baseline from its own executed history (model SHA-256 ledgered)."""
    data = service.train(app.session(), vault_ref, with_forest=forest)
    app.emit(data, lambda c: c.print(f"trained {data['model']} for {data['vault']} on {data['events']} transfers"))


@risk_group.command("eval")
@click.option("--seed", default=14, show_default=True, help="Random seed of the generated histories.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the report (JSON) here.")
@click.option("--forest", is_flag=True, help="Add the IsolationForest (custody[risk-ml]) to the anomaly layer.")
@json_option
@pass_app
def eval_cmd(app: AppContext, seed: int, out: str | None, forest: bool) -> None:
    """Generated benign histories per template + injected red-team cases: precision, recall, FPR, p95 latency."""
    from custody.risk.evaluation import run_evaluation, write_report

    report = run_evaluation(seed=seed, use_forest=forest)
    if out:
        write_report(report, out)

    def render(c: Console) -> None:
        for name, m in report["detectors"].items():
            c.print(f"  {name:<12} precision {m['precision']:.3f} recall {m['recall']:.3f} fpr {m['fpr']:.4f}")
        for name, caught in report["red_team"].items():
            c.print(f"  red team {name:<28} caught {caught['caught']}/{caught['cases']}")
        c.print(
            f"  p95 decision latency {report['latency_ms']['p95']:.2f} ms over {report['latency_ms']['n']} decisions"
        )

    app.emit(report, render)


@risk_group.group("lists")
def lists_group() -> None:
    """Sanctions screening lists."""


@lists_group.command("show")
@json_option
@pass_app
def lists_show(app: AppContext) -> None:
    """The active list: source, date, SHA-256, size."""
    data = service.show_list(app.session())
    app.emit(
        data,
        lambda c: c.print(
            f"{data['count']} addresses, date {data['date']}, sha256 {data['sha256']}\n  {data['source']}"
        ),
    )


@lists_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--date", help="Publication date of the file (ISO) when it does not say.")
@json_option
@pass_app
def lists_import(app: AppContext, file: str, date: str | None) -> None:
    """Load an OFAC SDN XML/CSV offline; the additions and delistings go to the ledger."""
    data = service.import_list(app.session(), file, date=date)
    app.emit(
        data,
        lambda c: c.print(
            f"imported {data['count']} addresses ({data['date']}): +{len(data['additions'])} -{len(data['delistings'])}"
        ),
    )


@risk_group.command("screen-deposits")
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def screen_deposits(app: AppContext, vault_ref: str) -> None:
    """Screen the senders of VAULT's indexed deposits (`custody audit index`) against the active list."""
    data = service.screen_deposits(app.session(), vault_ref)

    def render(c: Console) -> None:
        for hit in data["hits"]:
            c.print(
                f"[bold red]sanctioned[/bold red] sender {hit['sender']}: {hit['amount']} {hit['asset']} "
                f"({hit['entry']}){' — opened ' + hit['case'] if 'case' in hit else ''}"
            )
        if not data["hits"]:
            c.print(f"no deposit of {data['vault']} comes from a listed address ({data['list_version']})")

    app.emit(data, render)


@risk_group.group("cases")
def cases_group() -> None:
    """Case files opened by sanctions hits."""


@cases_group.command("list")
@json_option
@pass_app
def cases_list(app: AppContext) -> None:
    data = service.list_cases(app.session())

    def render(c: Console) -> None:
        for case in data:
            c.print(
                f"{case['case']} {case['opened_at']} {case['decision']} {case['address']} proposal {case['proposal']}"
            )

    app.emit(data, render)


@cases_group.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@json_option
@pass_app
def cases_export(app: AppContext, out: str) -> None:
    data = service.export_cases(app.session(), out)
    app.emit(data, lambda c: c.print(f"wrote {data['cases']} case file(s) to {data['file']}"))
