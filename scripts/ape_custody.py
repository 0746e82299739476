"""`ape run ape_custody`: a custody micro-vault driven from Ape, with Ape accounts as the vault's signers.

    ape run ape_custody --network ethereum:local:foundry [--home DIR] [--template FILE] [--to ADDRESS]
        [--amount 2.5] [--signer ape:1 --signer ape:2] [--json]

Ape's provider supplies the chain (its RPC is handed to ``custody.open``). Ape accounts become custody signers
under the ``ape:`` URI scheme — ``ape:N`` is Ape's test account N, ``ape:ALIAS`` an account imported with
``ape accounts import ALIAS`` — so ``proposal.sign("ape:1")`` signs the safeTxHash with that Ape account (raw
hash signing, as for any digest signer; custody checks the hash against the Safe first). An Ape account also
funds the vault with an ordinary Ape transfer. Everything else is the public API (docs/api.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml
from ape import accounts, networks
from ape.cli import ConnectedProviderCommand
from hexbytes import HexBytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's custody, whatever the install says

import custody
from custody.signers.base import DigestSigner
from custody.signers.ecdsa import EcdsaSignature
from custody.signers.registry import SignerContext, register
from custody.types import Address

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # on the shipped cold template's allowlist


class ApeAccountSigner(DigestSigner):
    """A custody signer backed by an Ape account (``AccountAPI.sign_raw_msghash``)."""

    def __init__(self, uri: str, account) -> None:
        self.uri = uri
        self._account = account

    @property
    def address(self) -> Address:
        return Address(str(self._account.address))

    def _sign_digest(self, digest: bytes) -> EcdsaSignature:
        signature = self._account.sign_raw_msghash(HexBytes(digest))
        if signature is None:
            raise custody.SignerError(f"{self.uri}: this Ape account does not sign raw hashes")
        return EcdsaSignature(int.from_bytes(signature.r, "big"), int.from_bytes(signature.s, "big"), signature.v)


def template_name(template: str) -> str:
    """The vault name a template creates (its ``name``), read without deploying anything."""
    return str(yaml.safe_load(Path(template).read_text(encoding="utf-8"))["name"])


def ape_account(reference: str):
    """Ape's test account N for ``N``, else the imported account with that alias."""
    return accounts.test_accounts[int(reference)] if reference.isdigit() else accounts.load(reference)


def _open_ape_signer(rest: str, _context: SignerContext) -> ApeAccountSigner:
    return ApeAccountSigner(f"ape:{rest}", ape_account(rest))


register("ape", _open_ape_signer)


@click.command(cls=ConnectedProviderCommand)
@click.option("--home", help="custody workspace folder [$CUSTODY_HOME, else ./.custody]")
@click.option("--template", default="policies/cold.yaml", show_default=True, help="policy template of the vault")
@click.option("--to", "destination", default=PRIME_BROKER, show_default=True, help="an allowlisted destination")
@click.option("--amount", default="2.5", show_default=True, help="ETH to transfer (exact decimal text)")
@click.option("--fund", default="10", show_default=True, help="ETH the funder sends the vault first")
@click.option("--funder", default="ape:0", show_default=True, help="the Ape account that funds the vault")
@click.option("--signer", "signers", multiple=True, default=("ape:1", "ape:2"), show_default=True,
              help="owner signer URIs (ape:N, ape:ALIAS, or any custody signer URI)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")
def cli(home, template, destination, amount, fund, funder, signers, as_json) -> None:
    """Create (or reuse) a vault, fund it from an Ape account, and transfer out of it signed by Ape accounts."""
    provider = networks.provider
    rpc = getattr(provider, "http_uri", None) or provider.uri
    with custody.open(home=home, rpc=rpc) as ws:
        try:
            vault = ws.vault(template_name(template))
        except custody.UnknownVault:
            vault = ws.create_vault(template)
        funded = ape_account(funder.split(":", 1)[1]).transfer(vault.safe, f"{fund} ether")
        proposal = vault.propose_transfer(destination, amount, proposer=signers[0])
        for uri in signers[: vault.threshold]:
            proposal.sign(uri)
        receipt = proposal.execute()
        done = {"vault": vault.name, "safe": vault.safe, "chain_id": ws.chain_id, "funding_tx": funded.txn_hash,
                "proposal": proposal.id, "signers": [s.signer for s in proposal.signatures],
                "tx_hash": receipt.tx_hash, "balance": vault.balance().amount,
                "audit": ws.audit.verify().verdict}  # fmt: skip
    if as_json:
        click.echo(json.dumps(done, indent=2, sort_keys=True))
    else:
        click.echo(f"{done['vault']} ({done['safe']}) sent {amount} ETH to {destination} in {done['tx_hash']}, "
                   f"signed by {', '.join(done['signers'])}; holds {done['balance']} ETH; audit {done['audit']}")  # fmt: skip
