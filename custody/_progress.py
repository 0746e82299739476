"""The library's progress hook: long work reports ``progress(done, total)`` — counts that only grow and end at
the total — to a callback its caller may pass (the CLI draws it as a rich bar on a terminal; see
custody/cli/_progress.py). Nothing here draws or prints."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as long work advances (bytes read, blocks scanned, entries checked)."""

T = TypeVar("T")


def counted(items: Iterable[T], total: int, progress: Progress | None, *, every: int = 1_000) -> Iterator[T]:
    """Yield ``items`` unchanged, reporting ``progress(done, total)`` at the start, every ``every`` items and at
    the end (where ``done`` is the number of items, ``total`` when the caller's count was right)."""
    if progress is None:
        yield from items
        return
    done = 0
    progress(0, total)
    for item in items:
        yield item
        done += 1
        if not done % every:
            progress(done, max(total, done))
    progress(done, max(total, done))
