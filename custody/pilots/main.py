"""The end-to-end pilot: a fresh local chain, two micro-vaults, a 2-of-3 transfer — every step through
the same service layer the CLI uses, timed and summarised.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody import _paths
from custody.chain.anvil import AnvilProcess
from custody.chain.connection import connect, next_utc_slot
from custody.contracts.infra import ensure_infrastructure
from custody.exceptions import ChainError, ConfirmationRequired
from custody.pilots.attest import attest_section, auditor_section, kyc_section
from custody.pilots.audit import audit_section
from custody.pilots.drills import drill_section
from custody.pilots.policy import policy_section
from custody.pilots.reconcile import collateral_section
from custody.pilots.risk import risk_section
from custody.session import Session
from custody.signers.local import anvil_signer
from custody.signers.pkcs11 import Pkcs11Signer, Pkcs11Uri, generate_key
from custody.signers.softhsm import init_token
from custody.vault import oob, proposals, service
from custody.vault.sealed import PASSPHRASE_ENV
from custody.workspace import Workspace

Progress = Callable[[str], None]

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # allowlisted in policies/cold.yaml and hot.yaml
COLD_OFFICER_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil:1, replaced by the HSM key in the pilot
HSM_TOKEN = "pilot-hsm"
HSM_KEY = "cold-officer-hsm"
PILOT_PROPOSER = "pilot-operator"
PILOT_CONFIRMER = "risk-officer"


@dataclass
class Step:
    name: str
    seconds: float
    detail: dict[str, Any]


@dataclass
class PilotRun:
    home: Path
    progress: Progress
    steps: list[Step] = field(default_factory=list)
    # one passphrase seals every out-of-band secret of the pilot's workspace (a demo workspace: never reused)
    oob_passphrase: str = field(default_factory=lambda: os.environ.get(PASSPHRASE_ENV) or secrets.token_urlsafe(16))

    def step(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.progress(f"▶ {name}")
        started = time.perf_counter()
        detail = fn()
        self.steps.append(Step(name, round(time.perf_counter() - started, 3), detail))
        return detail


def _transfer(
    session: Session,
    vault_ref: str,
    *,
    to: str,
    amount: str,
    token: str | None,
    signers: list[Any],
    proposer: str = "pilot",
    confirm: Callable[[proposals.Proposal], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    proposal = proposals.propose_transfer(session, vault_ref, to=to, amount=amount, token=token, proposer=proposer)
    shown = proposals.describe(session, proposal)
    for signer in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), signer)
    extra: dict[str, Any] = {}
    if confirm is not None:
        extra["out_of_band"] = confirm(proposals.get_proposal(session, proposal.id))
    receipt = proposals.execute(session, proposals.get_proposal(session, proposal.id))
    return {
        "proposal": proposal.id,
        "action": shown["decoded"]["summary"],
        "safe_tx_hash": proposal.safe_tx_hash,
        "onchain_safe_tx_hash": shown["onchain_safe_tx_hash"],
        "signers": [signer.address for signer in signers],
        "signer_uris": [signer.uri for signer in signers],
        "tx_hash": receipt.tx_hash,
        "block": receipt.block_number,
        "gas_used": receipt.gas_used,
        **extra,
    }


def _hsm_owner(run: PilotRun) -> dict[str, Any]:
    """A SoftHSM2 token in the pilot workspace with one secp256k1 key (the cold vault's HSM owner)."""
    folder = run.home / "hsm"
    folder.mkdir(mode=0o700)
    pin_file, so_pin_file = folder / "user.pin", folder / "so.pin"
    for path in (pin_file, so_pin_file):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(str(secrets.randbelow(10**8)).zfill(8) + "\n")
    token = init_token(folder, HSM_TOKEN, pin_file=pin_file, so_pin_file=so_pin_file)
    token.activate()
    pin_source = lambda _prompt: pin_file.read_text().strip()  # noqa: E731
    address, uri = generate_key(HSM_TOKEN, HSM_KEY, pin_source=pin_source)
    signer = Pkcs11Signer(Pkcs11Uri(HSM_TOKEN, HSM_KEY), pin_source=pin_source)
    return {
        "token": HSM_TOKEN,
        "key": HSM_KEY,
        "address": address,
        "uri": uri,
        "softhsm2_conf": str(token.conf),
        "pin_file": str(pin_file),
        "signer": signer,
        "replaces": COLD_OFFICER_1,
    }


def _derived_cold_policy(source: Path, target: Path, hsm_address: str) -> None:
    """cold.yaml with the HSM key in place of custody-officer-1 (everything else unchanged)."""
    text = source.read_text()
    if COLD_OFFICER_1 not in text:
        raise ChainError(f"pilot: {source} no longer names {COLD_OFFICER_1} as an owner to replace with the HSM key")
    target.write_text(text.replace(COLD_OFFICER_1, hsm_address))


def run_pilot(home: Path, *, progress: Progress = lambda _m: None, policies_dir: Path | None = None) -> dict[str, Any]:
    """Run the pilot in workspace ``home`` (wiped first) on a fresh Anvil that is stopped at the end."""
    policies = policies_dir or _paths.POLICIES_DIR
    if home.exists():
        shutil.rmtree(home)
    workspace = Workspace(home).ensure()
    run = PilotRun(home=home, progress=progress)
    started = time.perf_counter()
    anvil = AnvilProcess(state_file=workspace.state_file, log_file=workspace.log_file)
    with anvil:
        chain = connect(anvil.url, expected_chain_id=anvil.chain_id)
        # The pilot's chain clock starts on a Tuesday at 10:00 UTC: the templates freeze transfers at
        # weekends and outside business hours, and the demonstration must not depend on the day it runs.
        chain.set_next_timestamp(next_utc_slot(chain.latest_timestamp(), weekday=1, hour=10, min_ahead=0))
        chain.mine()
        session = Session(workspace=workspace, chain=chain)
        try:
            summary = _steps(run, session, policies)
        finally:
            workspace.close()
    summary["chain"] = {
        "url": anvil.url,
        "chain_id": chain.chain_id,
        "state_file": str(workspace.state_file),
        "stopped": True,
    }
    summary["workspace"] = str(home)
    summary["steps"] = [vars(s) for s in run.steps]
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _steps(run: PilotRun, session: Session, policies: Path) -> dict[str, Any]:
    copied = run.home / "policies"
    copied.mkdir()
    for name in ("hot.yaml", "cold.yaml"):
        shutil.copy(policies / name, copied / name)
    hsm = run.step("create a SoftHSM2 token and a secp256k1 key on it (cold-vault owner)", lambda: _hsm_owner(run))
    _derived_cold_policy(policies / "cold.yaml", copied / "cold.yaml", hsm["address"])
    hsm_signer = hsm.pop("signer")

    def infrastructure() -> dict[str, Any]:
        infra, results = ensure_infrastructure(session.chain, session.sender, session.store)
        session._infra = infra
        return {r.name: {"address": r.address, "gas_used": r.gas_used} for r in results}

    infra = run.step("deploy Safe v1.4.1, custody infrastructure and the demo stablecoin dUSD", infrastructure)
    token = infra["DemoUSD"]

    vaults: dict[str, dict[str, Any]] = {}
    for label, file in (("hot", "hot.yaml"), ("cold", "cold.yaml")):

        def create(file: str = file) -> dict[str, Any]:
            record, facts = service.create_vault(session, copied / file)
            state = service.read_state(session, record)
            return {
                "id": record.id,
                "name": record.name,
                "risk_class": record.risk_class,
                "safe": record.safe,
                "timelock": record.timelock,
                "guard": record.guard,
                "owners": state.owners,
                "threshold": state.threshold,
                "timelock_delay": state.timelock_delay,
                "tx_hash": facts["tx_hash"],
                "gas_used": facts["gas_used"],
            }

        vaults[label] = run.step(f"create {label} vault from {file}", create)

    def fund() -> dict[str, Any]:
        txs = []
        for label, amount in (("cold", 160 * 10**18), ("hot", 10 * 10**18)):
            r = session.send(to=vaults[label]["safe"], value=amount, what=f"funding the {label} vault")
            txs.append({"vault": label, "asset": "ETH", "amount": str(amount), "tx_hash": r.tx_hash})
        mint = function_signature_to_4byte_selector("mint(address,uint256)") + encode(
            ["address", "uint256"], [vaults["hot"]["safe"], 100_000 * 10**6]
        )
        r = session.send(to=token["address"], data=mint, what="minting dUSD to the hot vault")
        txs.append({"vault": "hot", "asset": "dUSD", "amount": str(100_000 * 10**6), "tx_hash": r.tx_hash})
        return {"deposits": txs}

    run.step("fund the vaults", fund)
    kyc = _kyc(run, session, vaults)  # KYC badges first: approval badges link to them

    def confirm_out_of_band(proposal: proposals.Proposal) -> dict[str, Any]:
        try:
            proposals.execute(session, proposal)
        except ConfirmationRequired as refused:
            refusal = refused.message
        else:
            raise ChainError("pilot: the large cold transfer executed without an out-of-band confirmation")
        sealing = run.oob_passphrase
        oob.enroll(session.workspace, PILOT_PROPOSER, passphrase=sealing)  # the proposer is a known person
        oob.enroll(session.workspace, PILOT_CONFIRMER, passphrase=sealing)
        code, _expires = oob.issue_challenge(
            session, proposal, PILOT_CONFIRMER, issued_by=PILOT_PROPOSER, passphrase=sealing
        )
        done = oob.confirm_with_code(session, proposal, PILOT_CONFIRMER, code, passphrase=sealing)
        return {
            "required": True,
            "refused_without_it": refusal,
            "proposer": PILOT_PROPOSER,
            "confirmer": done.confirmer,
            "method": done.method,
            "safe_tx_hash": done.safe_tx_hash,
            "confirmed_at": done.confirmed_at.isoformat(),
            "reason": done.reason,
        }

    transfers = [
        run.step(
            "cold vault: 2-of-3 transfer of 10 ETH to the prime broker (HSM owner + officer 2)",
            lambda: _transfer(
                session,
                vaults["cold"]["name"],
                to=PRIME_BROKER,
                amount="10",
                token=None,
                signers=[hsm_signer, anvil_signer(2)],
            ),
        ),
        run.step(
            "hot vault: 1-of-2 transfer of 2,500 dUSD to exchange settlement",
            lambda: _transfer(
                session,
                vaults["hot"]["name"],
                to=PRIME_BROKER,
                amount="2500",
                token=token["address"],
                signers=[anvil_signer(2)],
            ),
        ),
        run.step(
            "cold vault: large transfer of 60 ETH (HSM + officer 3) with an out-of-band confirmation",
            lambda: _transfer(
                session,
                vaults["cold"]["name"],
                to=PRIME_BROKER,
                amount="60",
                token=None,
                signers=[hsm_signer, anvil_signer(3)],
                proposer=PILOT_PROPOSER,
                confirm=confirm_out_of_band,
            ),
        ),
    ]
    hsm_signer.close()
    for t in transfers:
        if t["safe_tx_hash"] != t["onchain_safe_tx_hash"]:
            raise ChainError(
                f"pilot: safeTxHash {t['safe_tx_hash']} differs from the Safe's {t['onchain_safe_tx_hash']}"
            )
    balances = {
        label: {
            b.symbol: None if b.balance is None else str(b.balance)
            for b in service.read_state(session, service.get_vault(session, v["id"])).balances
        }
        for label, v in vaults.items()
    }
    return {
        "infrastructure": infra,
        "demo_token": token["address"],
        "vaults": vaults,
        "transfers": transfers,
        "balances": balances,
        "hsm": {k: v for k, v in hsm.items() if k != "pin_file"},
        "out_of_band": transfers[2]["out_of_band"],
        "policy": _policy(run, session, vaults["hot"]["name"], copied / "hot.yaml"),
        "collateral": (collateral := _collateral(run, session, copied / "hot.yaml")),
        "attestations": {"kyc": kyc, **_attestations(run, session, vaults, collateral, copied)},
        "drill": _drill(run, session, vaults["cold"]["name"]),  # before the audit: its record is verified too
        "audit": (audit := _audit(run, session)),
        "auditor_badges": _auditor(run, session, vaults, collateral, copied, Path(audit["bundle"])),
        "risk": _risk(run, session),  # last: it moves the chain clock to a Saturday night
    }


def _risk(run: PilotRun, session: Session) -> dict[str, Any]:
    """The pre-sign risk engine: a lookalike and a sanctioned destination denied, an off-hours transfer warned."""

    return risk_section(run.step, session, run.home / "risk", oob_passphrase=run.oob_passphrase)


def _policy(run: PilotRun, session: Session, hot_vault: str, template: Path) -> dict[str, Any]:
    """The guard at work: refusals off- and on-chain, and a timelocked policy change."""

    return policy_section(
        run.step,
        session,
        hot_vault,
        template,
        anvil_signer(2),
        cosigner=anvil_signer(1),
        oob_passphrase=run.oob_passphrase,
    )


def _drill(run: PilotRun, session: Session, cold_vault: str) -> dict[str, Any]:
    """The cold vault's emergency exit rehearsed on a snapshot (reverted); report in <pilot>/drill-report/."""

    return drill_section(run.step, session, cold_vault, ("anvil:2", "anvil:3"), run.home / "drill-report")


def _auditor(
    run: PilotRun,
    session: Session,
    vaults: dict[str, dict[str, Any]],
    collateral: dict[str, Any],
    copied: Path,
    bundle: Path,
) -> dict[str, Any]:
    """The badges of every vault (incl. the cold vault's drill badge, the issuer's reconciliation sign-off)
    checked as an outside auditor would: chain data, the templates and the exported audit bundle only."""

    templates = sorted(copied.glob("*.yaml")) + [Path(collateral["template"])]
    safes = {**{k: v["safe"] for k, v in vaults.items()}, "issuer": collateral["safe"]}
    return auditor_section(run.step, session, safes, templates, bundle)


def _audit(run: PilotRun, session: Session) -> dict[str, Any]:
    """Index, verify and anchor the pilot's own ledger; HTML report and bundle in <pilot>/audit-report/."""

    return audit_section(run.step, session, run.home / "audit-report")


def _collateral(run: PilotRun, session: Session, issuer_template: Path) -> dict[str, Any]:
    """Tokenized collateral: an issuer vault mints against generated bars; a clean and a seeded reconciliation."""

    return collateral_section(run.step, session, issuer_template, run.home / "collateral")


def _kyc(run: PilotRun, session: Session, vaults: dict[str, dict[str, Any]]) -> dict[str, Any]:

    return kyc_section(run.step, session, vaults)


def _attestations(
    run: PilotRun, session: Session, vaults: dict[str, dict[str, Any]], collateral: dict[str, Any], copied: Path
) -> dict[str, Any]:
    """Inventory tags (batch), a reconciliation sign-off, and verification of every badge."""

    templates = sorted(copied.glob("*.yaml")) + [Path(collateral["template"])]
    return attest_section(run.step, session, vaults, collateral, templates, run.home / "attestations")
