"""custody drill run|check|actions — rehearsed drills from YAML playbooks."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from custody.cli._app import AppContext, emit_file_problems, json_option, pass_app, table
from custody.exceptions import DrillFailed, InputError


@click.group("drill")
def drill_group() -> None:
    """Rehearse incidents from playbooks (playbooks/*.yaml) on a snapshot, the live local chain or a fork."""


def _params(values: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param takes NAME=VALUE (lists comma-separated), got {item!r}")
        params[name.strip()] = value.strip()
    return params


@drill_group.command("run")
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.option("--vault", "vault_ref", metavar="VAULT", help="Rehearse on this existing vault (replaces the subject).")
@click.option("--live", is_flag=True, help="Run on the workspace's local chain and keep the result.")
@click.option("--fork-url", metavar="URL", help="Run on a throw-away Anvil fork of this RPC.")
@click.option("--fork-block", type=int, metavar="N", help="Fork at this block [latest].")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a playbook parameter.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [<home>/drills/<time>-<name>-<run>].")
@json_option
@pass_app
def run(
    app: AppContext,
    playbook: str,
    vault_ref: str | None,
    live: bool,
    fork_url: str | None,
    fork_block: int | None,
    params: tuple[str, ...],
    out: str | None,
) -> None:
    """Run PLAYBOOK step by step; exit code 2 (with the diff) when an expectation fails."""
    from custody.drills import DrillOptions, load_playbook, run_drill

    book = load_playbook(playbook)
    options = DrillOptions(
        vault=vault_ref,
        live=live,
        fork_url=fork_url,
        fork_block=fork_block,
        params=_params(params),
        out=Path(out) if out else None,
        sender=app.sender,
        attester=app.attester,
    )
    chain = None if fork_url else app.session().chain
    report = run_drill(app.workspace, book, options, chain=chain, progress=app.note)
    data = report.data

    def render(c: Console) -> None:
        verdict = "[green]PASSED[/green]" if report.passed else "[bold red]FAILED[/bold red]"
        run_info = data["run"]
        c.print(
            f"[bold]drill {data['drill']['name']}[/bold] — {data['drill']['title']}: {verdict} "
            f"({run_info['mode']}, chain {run_info['chain']['chain_id']}, {run_info['seconds']} s)"
        )
        t = table("#", "step", "action", "who", "expected", "observed", "s", "verdict")
        for s in data["steps"]:
            who = ", ".join(a["uri"] for a in s["actor"])
            exp = "ok" if s["expected"]["ok"] else f"error {s['expected'].get('error') or ''}"
            obs = "-" if s["observed"] is None else ("ok" if s["observed"]["ok"] else s["observed"]["error"])
            colour = {"passed": "green", "failed": "red", "skipped": "dim"}[s["verdict"]]
            seconds = "" if s["seconds"] is None else f"{s['seconds']:.2f}"
            t.add_row(
                str(s["index"]), s["name"], s["action"], who, exp, obs, seconds, f"[{colour}]{s['verdict']}[/{colour}]"
            )
        c.print(t)
        for f in data["failures"]:
            c.print(f"[bold red]step {f['step']}[/bold red] ({data['drill']['playbook']}:{f['line']}) {f['name']}")
            for d in f["diff"]:
                c.print(f"  [red]- expected[/red] {d['field']}: {d['expected']}")
                c.print(f"  [green]+ observed[/green] {d['field']}: {d['observed']}")
        rpc = data["rpc"]
        c.print(
            f"rpc: {rpc['calls']} calls, {rpc['faults_injected']} faults injected, {rpc['broadcasts']} broadcasts, "
            f"{len(rpc['duplicate_nonce_broadcasts'])} duplicate-nonce broadcasts"
        )
        c.print(f"report: {report.html_path}\n        {report.json_path}")

    app.emit(data, render)
    if not report.passed:
        steps = ", ".join(str(f["step"]) for f in data["failures"]) or "none (steps not run)"
        if app.json:
            raise click.exceptions.Exit(DrillFailed.exit_code)
        raise DrillFailed(
            f"drill {data['drill']['name']} failed: step(s) {steps} did not go as expected (report {report.html_path})",
            report=str(report.json_path),
        )


@drill_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@pass_app
def check(app: AppContext, files: tuple[str, ...]) -> None:
    """Validate playbooks; reports every problem with file, line and field."""
    from custody.drills import check_playbook

    emit_file_problems(app, files, check_playbook)


@drill_group.command("actions")
@json_option
@pass_app
def actions(app: AppContext) -> None:
    """The actions a playbook step can use, their arguments and who acts."""
    from custody.drills import registry

    specs = [spec.as_dict() for _name, spec in sorted(registry().items())]

    def render(c: Console) -> None:
        t = table("action", "arguments", "actor", "what it does")
        for s in specs:
            args = ", ".join(p["name"] + ("" if p["required"] else "?") for p in s["params"])
            t.add_row(s["action"], args, s["actor"], s["summary"])
        c.print(t)

    app.emit(specs, render)
