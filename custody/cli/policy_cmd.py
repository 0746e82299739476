"""custody policy check|explain"""

from __future__ import annotations

import click

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.policy.explain import controls_index, rules
from custody.policy.template import check_policy, load_policy


@click.group()
def policy() -> None:
    """Policy templates: validate and explain."""


@policy.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@pass_app
def check(app: AppContext, files: tuple[str, ...]) -> None:
    """Validate templates; reports every problem with file, line and field."""
    report = {f: [p.as_dict() for p in check_policy(f)] for f in files}
    bad = sum(1 for problems in report.values() if problems)

    def render(c):
        for f, problems in report.items():
            if not problems:
                c.print(f"[green]ok[/green]   {f}")
            for p in problems:
                c.print(f"[red]error[/red] {p['file']}:{p['line']}: {p['field']}: {p['message']}")

    app.emit({"ok": bad == 0, "files": report}, render)
    if bad:
        raise click.exceptions.Exit(1)


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def explain(app: AppContext, file: str) -> None:
    """Every rule of FILE and the compliance controls it serves."""
    p = load_policy(file)
    items = rules(p)
    index = controls_index(items)

    def render(c):
        c.print(f"[bold]{p.name}[/bold] ({p.risk_class}) — {p.description}")
        t = table("rule", "enforces", "controls", "enforced by")
        for r in items:
            t.add_row(r.id, r.description, ", ".join(r.controls) or "[red]none[/red]", r.enforced_by)
        c.print(t)
        t = table("control", "rules")
        for control, rule_ids in index.items():
            t.add_row(control, ", ".join(rule_ids))
        c.print(t)

    app.emit(
        {"name": p.name, "risk_class": p.risk_class, "rules": [r.as_dict() for r in items], "controls": index}, render
    )
