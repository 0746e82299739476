"""custody key new|import|list — encrypted keystores in the workspace, or keys generated on a PKCS#11 token (--hsm)."""

from __future__ import annotations

import getpass
import os
import re
import secrets
import sys
from pathlib import Path

import click
from rich.console import Console

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


def _hsm_new(app: AppContext, token: str, name: str) -> None:
    from custody.signers.pkcs11 import generate_key

    if not _NAME.match(name):
        raise InputError(f"key name {name!r} must be 1-64 characters of letters, digits, '_', '.', '-'")
    address, uri = generate_key(token, name)
    app.emit(
        {"name": name, "address": address, "token": token, "uri": uri},
        lambda c: c.print(f"generated on token {token} (non-extractable)\n  address {address}\n  signer  {uri}"),
    )


@key.command()
@click.argument("name")
@click.option("--hsm", is_flag=True, help="Generate the key on a PKCS#11 token instead of a keystore file.")
@click.option("--token", metavar="LABEL", help="Token label for --hsm (PIN from $CUSTODY_PKCS11_PIN_FILE or prompt).")
@json_option
@pass_app
def new(app: AppContext, name: str, hsm: bool, token: str | None) -> None:
    """Generate a key: keystore NAME (keystore:NAME), or with --hsm a secp256k1 key on a token (pkcs11:…)."""
    if hsm or token:
        if not (hsm and token):
            raise InputError("--hsm needs --token LABEL (and --token needs --hsm)")
        _hsm_new(app, token, name)
        return
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
@click.option("--token", metavar="LABEL", help="List the secp256k1 keys on this PKCS#11 token instead.")
@json_option
@pass_app
def list_cmd(app: AppContext, token: str | None) -> None:
    """Keystores in the workspace (or keys on a PKCS#11 token with --token)."""
    if token:
        from custody.signers.pkcs11 import list_keys

        keys = list_keys(token)

        def render_keys(c: Console) -> None:
            t = table("name", "address", "signer URI")
            for i in keys:
                t.add_row(i["name"], i["address"], i["uri"])
            c.print(t)

        app.emit(keys, render_keys)
        return
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

    def render(c: Console) -> None:
        t = table("name", "address", "signer URI")
        for i in items:
            t.add_row(i["name"], i["address"] or f"[red]{i.get('error')}[/red]", i["uri"])
        c.print(t)

    app.emit(items, render)
