"""Small performance helpers shared by the bulk paths (bar lists, event columns, ledger entries)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small objects are built.

    Bar lists, event columns and parsed ledger entries hold no reference cycles; with the collector
    running, every few thousand allocations it re-walks all live containers, which makes building a
    million-row column several times slower. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
