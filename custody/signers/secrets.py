"""Where secrets (PINs, passphrases) come from: environment, a file, or a no-echo prompt — never argv.

A :class:`SecretSource` is a callable ``(prompt) -> str``. The value it returns is handed straight to
the backend that needs it and dropped; it is never logged, stored, or put into an error message.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from custody.exceptions import SignerError, SignerLocked

SecretSource = Callable[[str], str]


def read_secret_file(path: str | os.PathLike[str], *, what: str) -> str:
    """The first line of a secret file (trailing newline removed)."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SignerError(f"cannot read the {what} file {path}: {exc.strerror}") from exc


def env_file_or_prompt(*, value_env: str, file_env: str, what: str) -> SecretSource:
    """A source that tries ``$value_env``, then the file named by ``$file_env``, then a terminal prompt."""

    def source(prompt: str) -> str:
        if value_env in os.environ:
            return os.environ[value_env]
        file_name = os.environ.get(file_env)
        if file_name:
            return read_secret_file(file_name, what=what)
        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass(prompt)
        raise SignerLocked(
            f"no {what} available: set {file_env} (a file holding it) or {value_env}, or run on a terminal to be prompted"
        )

    return source
