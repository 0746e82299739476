"""Progress bars for long work: rich, on stderr so that --json stdout stays clean, and only when stderr is a
terminal and --json is off (:func:`wanted`). The library reports ``progress(done, total)``
(custody/_progress.py); these context managers turn that callback into one bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from custody.cli._app import AppContext, console

Update = Callable[[int, int], None]
Bar = Callable[[str], AbstractContextManager[Update]]


def wanted(app: AppContext) -> bool:
    """Draw progress? Only for a person watching: stderr is a terminal and the output is not --json."""
    return not app.json and app.err.is_terminal


@contextmanager
def _bar(description: str, columns: tuple[Any, ...], stream: Console | None) -> Iterator[Update]:
    with Progress(*columns, console=stream or console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def byte_progress(description: str, *, stream: Console | None = None) -> AbstractContextManager[Update]:
    """A ``progress(done_bytes, total_bytes)`` callback drawing one bar for ``description``."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    return _bar(description, columns, stream)


def count_progress(description: str, *, stream: Console | None = None) -> AbstractContextManager[Update]:
    """A ``progress(done, total)`` callback for counted work (blocks, entries) drawing one bar."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return _bar(description, columns, stream)


@contextmanager
def progress_for(app: AppContext, description: str, bar: Bar = count_progress) -> Iterator[Update | None]:
    """The callback to hand to the library: a drawn bar when :func:`wanted`, else None (nothing drawn)."""
    if not wanted(app):
        yield None
        return
    with bar(description) as update:
        yield update
