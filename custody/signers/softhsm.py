"""SoftHSM2 tokens for demos and tests: a token directory + config in a folder, created with softhsm2-util.

SoftHSM2 reads ``$SOFTHSM2_CONF`` when the module is initialised; :func:`custody.signers.pkcs11.load_library`
re-initialises the module when that variable changes, so a process can switch token folders.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from custody.exceptions import DeviceNotFound, SignerError

CONF_ENV = "SOFTHSM2_CONF"


@dataclass(frozen=True)
class SoftHsmToken:
    """Where a SoftHSM2 token lives; ``conf`` is what ``$SOFTHSM2_CONF`` must name to see it."""

    label: str
    conf: Path
    token_dir: Path

    def activate(self) -> None:
        """Point this process (and its children) at this token's config."""
        os.environ[CONF_ENV] = str(self.conf)


def init_token(folder: Path, label: str, *, pin_file: Path, so_pin_file: Path) -> SoftHsmToken:
    """Create ``folder``/softhsm2.conf and a fresh token labelled ``label`` (PINs read from files, not argv)."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise DeviceNotFound("softhsm2-util is not installed (Debian package softhsm2)")
    token_dir = folder / "tokens"
    token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = pin_file.read_text().strip()
    so_pin = so_pin_file.read_text().strip()
    # softhsm2-util only takes PINs as arguments or interactively; feed them through its prompts on stdin
    # so they never appear in the process table.
    # softhsm2-util reads PINs from a terminal: give it a pseudo-terminal and answer its four prompts.
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [util, "--init-token", "--free", "--label", label],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, CONF_ENV: str(conf)},
        )
        os.write(controller, f"{so_pin}\n{so_pin}\n{pin}\n{pin}\n".encode())
        _out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    del pin, so_pin
    if process.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SignerError(f"softhsm2-util could not create token {label!r}: {last[0]}")
    return SoftHsmToken(label=label, conf=conf, token_dir=token_dir)
