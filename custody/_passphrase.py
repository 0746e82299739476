"""Where a passphrase comes from, in one order for every secret the toolkit seals: an environment variable,
then a file named by another one, then a no-echo prompt when a person is at a terminal."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path


def resolve_passphrase(env_name: str, file_env_name: str, prompt: str) -> str | None:
    """The passphrase from ``$env_name``, the file named by ``$file_env_name`` or a terminal prompt; None when
    none of them is available (no variable, no file, no terminal).

    Raises:
        OSError: the file named by ``$file_env_name`` cannot be read.
    """
    value = os.environ.get(env_name)
    if value is not None:
        return value
    file_name = os.environ.get(file_env_name)
    if file_name:
        return Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    return None
