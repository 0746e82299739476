"""Lazily loaded click groups: a command's module is imported only when that command is invoked or its help is
asked for, so ``custody --help`` (and every command's start-up) does not pay for the rest of the tree.

A group lists its lazy commands as ``name → LazyCommand(module, attribute, short_help)``; its help shows the
registry's short help without importing anything. ``tests/test_cli_lazy.py`` checks that each registry entry's
short help is what the loaded command would show, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
from click.utils import make_default_short_help

INTERRUPTED_WHILE_STARTING = "error: interrupted while starting; nothing was done\n"


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``module``, ``attribute``) and the short help its group's help shows for it."""

    module: str
    attribute: str
    short_help: str

    def load(self) -> click.Command:
        """Import the command's module (Ctrl-C meanwhile: one sentence, exit 130, nothing done)."""
        try:
            command = getattr(importlib.import_module(self.module), self.attribute)
        except KeyboardInterrupt:
            sys.stderr.write(INTERRUPTED_WHILE_STARTING)
            raise SystemExit(130) from None
        if not isinstance(command, click.Command):  # a registry typo is a bug: say which entry
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        return command


def short_help_of(command: click.Command) -> str:
    """The short help a group's help shows for ``command`` when the width is unlimited (what a registry holds)."""
    return command.get_short_help_str(limit=10**6)


class LazyGroup(click.Group):
    """A click group whose ``lazy_commands`` are imported on first use (:meth:`get_command`)."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self.lazy_commands[cmd_name].load(), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not loaded yet is listed with its registry short help (no import)."""
        listed: list[tuple[str, str | click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                listed.append((name, self.lazy_commands[name].short_help))
            elif not command.hidden:
                listed.append((name, command))
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        rows = [
            (name, make_default_short_help(entry, limit) if isinstance(entry, str) else entry.get_short_help_str(limit))
            for name, entry in listed
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
