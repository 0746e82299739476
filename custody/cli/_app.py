"""CLI plumbing: the root group, shared options, output (rich tables or --json), error translation."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from custody.cli._lazy import LazyGroup
from custody.exceptions import CustodyError

if TYPE_CHECKING:
    from custody.session import Session
    from custody.workspace import Workspace

log = logging.getLogger("custody")


@dataclass
class AppContext:
    home: str | None = None
    rpc: str | None = None
    sender: str | None = None
    attester: str | None = None
    json: bool = False
    _session: Session | None = field(default=None, repr=False)
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def out(self) -> Console:
        return console()

    @property
    def err(self) -> Console:
        return console(stderr=True)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            # imported here, not at the top: the workspace pulls in web3 and SQLAlchemy, which `custody --help`
            # and the commands that never open a workspace must not pay for (benchmarks/bench_startup.py)
            from custody.workspace import Workspace

            self._workspace = Workspace(self.home)
        return self._workspace

    def session(self) -> Session:
        """Connect once per invocation (auto-starting the workspace chain when needed)."""
        if self._session is None:
            from custody.session import Session  # web3: see `workspace`

            chain, started = self.workspace.connect(self.rpc)
            if started:
                self.note(f"started local chain at {chain.url} (stop it with `custody chain down`)")
            # before anything is written: is this the chain the workspace recorded for this chain id?
            self._session = Session.bound(self.workspace, chain, sender_uri=self.sender, attester_uri=self.attester)
        return self._session

    def note(self, message: str) -> None:
        """Progress/notice for people: stderr, so --json stdout stays clean."""
        self.err.print(f"[dim]{message}[/dim]")

    def emit(self, data: Any, render: Callable[[Console], None] | None = None) -> None:
        """Print ``data`` as JSON with --json, else let ``render`` draw it for people."""
        if self.json or render is None:
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))
        else:
            render(self.out)

    def close(self) -> None:
        if self._session is not None:
            # records the chain identity, then closes signers it opened (HSM sessions, device links)
            self._session.close()
        if self._workspace is not None:
            self._workspace.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, (str, int)):
        return value.value
    return str(value)


def console(*, stderr: bool = False) -> Console:
    """A rich console; off a terminal it is wide enough that addresses and hashes never fold."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 240
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def table(*columns: str, title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        t.add_column(column, overflow="fold")
    return t


pass_app = click.make_pass_decorator(AppContext)


def emit_file_problems(app: AppContext, files: tuple[str, ...], check: Callable[[str], list[Any]]) -> None:
    """``policy check`` / ``drill check``: every problem of every file (file:line: field: message);
    exit code 1 when any file has one."""
    report = {f: [p.as_dict() for p in check(f)] for f in files}
    bad = sum(1 for problems in report.values() if problems)

    def render(c: Console) -> None:
        for f, problems in report.items():
            if not problems:
                c.print(f"[green]ok[/green]   {f}")
            for p in problems:
                c.print(f"[red]error[/red] {p['file']}:{p['line']}: {p['field']}: {p['message']}")

    app.emit({"ok": bad == 0, "files": report}, render)
    if bad:
        raise click.exceptions.Exit(1)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on every command (also accepted before the command name)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.ensure_object(AppContext).json = True
        return value

    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=callback,
        help="Machine-readable JSON output.",
    )(fn)


class CustodyGroup(LazyGroup):
    """The root group: loads its commands lazily (:class:`LazyGroup`) and turns :class:`CustodyError` into one
    sentence on stderr (or a JSON error) and its exit code (1 unless the error class says otherwise)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CustodyError as exc:
            app = ctx.find_object(AppContext)
            if app is not None and app.json:
                click.echo(json.dumps(exc.to_dict(), indent=2, sort_keys=True))
            else:
                err = console(stderr=True)
                err.print(f"[bold red]error:[/bold red] {_escape(exc.message)}")
                if exc.hint:
                    err.print(f"[yellow]hint:[/yellow] {_escape(exc.hint)}")
            log.debug("command failed", exc_info=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            Console(stderr=True).print("[red]interrupted[/red]")
            ctx.exit(130)
        finally:
            app = ctx.find_object(AppContext)
            if app is not None:
                app.close()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
