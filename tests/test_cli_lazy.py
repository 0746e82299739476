"""The CLI loads lazily (custody/cli/_lazy.py): ``custody --help`` imports no command module and nothing heavy,
a command's module is imported only when that command is resolved, the registries' short help is what the
commands themselves say, and every command defined under custody/cli is reachable from ``custody``.

These are properties (what is in ``sys.modules``, what the help says), not timings: the timings are
benchmarks/bench_startup.py's.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import click
import pytest

import custody.cli
from custody.cli import COMMANDS, cli
from custody.cli._lazy import LazyGroup, short_help_of
from tests.conftest import REPO

BASE_MODULES = ["custody.cli._app", "custody.cli._entry", "custody.cli._lazy"]
HEAVY = ("web3", "eth_account", "numpy", "sqlalchemy", "safe_eth", "custody.workspace", "custody.session")

#: runs the real entry point with ARGS in a fresh interpreter, then reports (on stderr, after the CLI's own
#: output) which of MODULES were imported and every custody.cli.* module loaded
PROBE = """
import json, os, sys
from custody.cli import main
code = None
try:
    sys.argv = ["custody", *json.loads(os.environ["PROBE_ARGS"])]
    main()
except SystemExit as exit:
    code = exit.code
wanted = json.loads(os.environ["PROBE_MODULES"])
report = {"code": code, "imported": [m for m in wanted if m in sys.modules],
          "cli_modules": sorted(m for m in sys.modules if m.startswith("custody.cli."))}
sys.stderr.write("\\nPROBE " + json.dumps(report) + "\\n")
"""


def probe(*args: str, modules: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None) -> tuple[str, dict]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env={**base, **(env or {}), "PROBE_ARGS": json.dumps(args), "PROBE_MODULES": json.dumps(modules)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stderr.rsplit("PROBE ", 1)[1])
    return done.stdout, report


def _lazy_groups(group: click.Group, path: str = "custody") -> list[tuple[str, LazyGroup]]:
    """Every LazyGroup in the tree below ``group`` (loading every command on the way)."""
    found = [(path, group)] if isinstance(group, LazyGroup) else []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if isinstance(sub, click.Group):
            found += _lazy_groups(sub, f"{path} {name}")
    return found


def _reachable(group: click.Group) -> set[int]:
    ctx = click.Context(group)
    seen = {id(group)}
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        assert sub is not None, f"{group.name} lists {name!r} but cannot resolve it"
        seen |= _reachable(sub) if isinstance(sub, click.Group) else {id(sub)}
    return seen


def test_top_level_help_imports_no_command_module_and_nothing_heavy() -> None:
    out, report = probe("--help")
    assert report["code"] == 0
    assert report["imported"] == [], f"`custody --help` imported {report['imported']}"
    assert report["cli_modules"] == BASE_MODULES
    for name, entry in COMMANDS.items():  # every command listed, with the registry's short help
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name
        assert entry.short_help.split()[0] in out


def test_a_command_loads_only_its_own_module() -> None:
    _, report = probe("policy", "--help")
    assert report["code"] == 0
    assert report["cli_modules"] == [*BASE_MODULES, "custody.cli.policy_cmd"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registry_entry_is_the_command_and_its_short_help(name: str) -> None:
    command = COMMANDS[name].load()
    assert command.name == name, f"COMMANDS[{name!r}] loads the command named {command.name!r}"
    assert COMMANDS[name].short_help == short_help_of(command), f"update COMMANDS[{name!r}].short_help"


def test_every_lazy_group_lists_what_its_loaded_commands_would_say() -> None:
    """For each LazyGroup (custody, vault, tx): each lazy entry names its command and repeats its short help,
    and the help listing drawn from the registry alone is the one click draws from the loaded commands."""
    groups = _lazy_groups(cli)
    assert {path for path, _ in groups} >= {"custody", "custody vault", "custody tx"}
    for path, group in groups:
        for name, entry in group.lazy_commands.items():
            command = entry.load()
            assert command.name == name, f"{path}: {name!r} loads {command.name!r}"
            assert entry.short_help == short_help_of(command), f"{path} {name}: registry short help differs"
        unloaded = LazyGroup(name=group.name, lazy_commands=group.lazy_commands)
        unloaded.commands = {n: c for n, c in group.commands.items() if n not in group.lazy_commands}
        names = group.list_commands(click.Context(group))
        loaded = click.Group(name=group.name, commands={n: group.commands[n] for n in names})
        for width in (80, 110, 200):
            drawn = []
            for g in (unloaded, loaded):
                formatter = click.HelpFormatter(width=width)
                g.format_commands(click.Context(g), formatter)
                drawn.append(formatter.getvalue())
            assert drawn[0] == drawn[1], f"{path} help at width {width}"


def test_every_command_defined_under_custody_cli_is_reachable_from_custody() -> None:
    """No command is orphaned by the lazy registries: each click command a custody.cli module defines at its
    top level is in the tree reachable from ``custody`` (e.g. ``vault fund`` lives in fund_cmd.py)."""
    reachable = _reachable(cli)
    defined = {}
    for info in pkgutil.iter_modules(custody.cli.__path__):
        module = importlib.import_module(f"custody.cli.{info.name}")
        for attribute, value in vars(module).items():
            defined_here = getattr(value, "callback", None) and value.callback.__module__ == module.__name__
            if isinstance(value, click.Command) and defined_here:
                defined[f"{module.__name__}.{attribute}"] = value
    assert len(defined) > 60  # the whole tree, not an import that silently found nothing
    orphans = sorted(name for name, command in defined.items() if id(command) not in reachable)
    assert orphans == [], f"commands not reachable from `custody`: {orphans}"


def test_vault_list_reads_the_chain_without_the_risk_engine_or_numpy(run_cli, cli_env) -> None:
    """The read path loads what it reads with: web3 and the vault service, not proposals, the risk engine
    (numpy), signer backends, or py-evm (``eth``, imported by ``safe_eth.eth``: the Safe's ABI is read from
    safe-eth-py's files without importing that package, a second of start-up)."""
    created = run_cli("vault", "create", str(REPO / "policies" / "hot.yaml"), "--json")
    assert created.exit_code == 0, created.output
    read_path_avoids = ("numpy", "sklearn", "custody.risk", "custody.vault.proposals", "pkcs11", "eth", "safe_eth.eth")
    out, report = probe("vault", "list", "--json", modules=("web3", *read_path_avoids), env=cli_env)
    assert report["code"] == 0
    assert [v["name"] for v in json.loads(out)] == ["hot-ops"]
    assert report["imported"] == ["web3"]
