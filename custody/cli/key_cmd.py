"""custody key new|import|list — encrypted keystores in the workspace (HSM keys: see --hsm in later versions)."""

from __future__ import annotations

import getpass
import os
import re
import secrets
import sys
from pathlib import Path

import click

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.exceptions import InputError, SignerError
from custody.signers.keystore import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    create_keystore,
    default_passphrase_source,
    read_keystore,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@click.group()
def key() -> None:
    """Signing keys: encrypted keystores (passphrase never from the command line)."""


def _new_passphrase() -> str:
    """Passphrase for a new keystore: env/file, else prompted twice without echo."""
    if PASSPHRASE_ENV in os.environ or PASSPHRASE_FILE_ENV in os.environ:
        return default_passphrase_source("")
    if not sys.stdin.isatty():
        raise SignerError(f"no passphrase: set {PASSPHRASE_FILE_ENV} (a file holding it) or run on a terminal")
    first = getpass.getpass("New keystore passphrase: ")
    if first != getpass.getpass("Repeat passphrase: "):
        raise SignerError("the two passphrases differ; nothing was written")
    return first


def _target(app: AppContext, name: str) -> Path:
    if not _NAME.match(name):
        raise InputError(f"key name {name!r} must be 1-64 characters of letters, digits, '_', '.', '-'")
    return app.workspace.keystore_dir / f"{name}.json"


@key.command()
@click.argument("name")
@json_option
@pass_app
def new(app: AppContext, name: str) -> None:
    """Generate a key into an encrypted keystore NAME (use as keystore:NAME)."""
    path = _target(app, name)
    address = create_keystore(path, secrets.token_bytes(32), _new_passphrase())
    app.emit(
        {"name": name, "address": address, "path": str(path), "uri": f"keystore:{path}"},
        lambda c: c.print(f"created {path}\n  address {address}\n  signer  keystore:{path}"),
    )


@key.command("import")
@click.argument("name")
@click.option(
    "--key-file", type=click.Path(exists=True, dir_okay=False), help="File holding the hex private key [prompt]."
)
@json_option
@pass_app
def import_cmd(app: AppContext, name: str, key_file: str | None) -> None:
    """Import a raw private key (from a file or a hidden prompt) into keystore NAME."""
    path = _target(app, name)
    if key_file:
        raw = Path(key_file).read_text(encoding="utf-8").strip()
    elif sys.stdin.isatty():
        raw = getpass.getpass("Private key (hex): ").strip()
    else:
        raw = sys.stdin.readline().strip()
    try:
        private_key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise InputError("the private key is not hex") from None
    finally:
        del raw
    if len(private_key) != 32:
        raise InputError(f"a private key is 32 bytes, got {len(private_key)}")
    address = create_keystore(path, private_key, _new_passphrase())
    app.emit(
        {"name": name, "address": address, "path": str(path), "uri": f"keystore:{path}"},
        lambda c: c.print(f"imported into {path}\n  address {address}"),
    )


@key.command("list")
@json_option
@pass_app
def list_cmd(app: AppContext) -> None:
    """Keystores in the workspace."""
    folder = app.workspace.keystore_dir
    items = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            data = read_keystore(path)
            items.append(
                {"name": path.stem, "address": "0x" + data["address"].removeprefix("0x"), "uri": f"keystore:{path}"}
            )
        except SignerError as exc:
            items.append({"name": path.stem, "address": None, "error": exc.message, "uri": f"keystore:{path}"})

    def render(c):
        t = table("name", "address", "signer URI")
        for i in items:
            t.add_row(i["name"], i["address"] or f"[red]{i.get('error')}[/red]", i["uri"])
        c.print(t)

    app.emit(items, render)
