"""The pilot's drill section (custody/pilots/main.py calls it just before the audit section).

The cold vault rehearses its emergency exit to its pre-approved fallback custodian with the shipped
``playbooks/emergency-exit.yaml`` on a snapshot of the pilot's chain: its own owners are the
initiators (the cold template names no recovery council), one of them cancels the first request, the
second one runs through the escrow delay and sweeps the vault. The chain is reverted afterwards — the
pilot checks that the cold vault still holds everything — and the report (JSON + HTML) is kept in
``<pilot>/drill-report/``. The drill is recorded by :func:`custody.drills.hooks.record_drill` in the
pilot's workspace before the audit section verifies the ledger, and the operations attester (the
cold template authorises it for ``drill``) issues its drill badge, linked to that ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from custody import _paths
from custody.drills import DrillOptions, load_playbook, run_drill
from custody.exceptions import DrillFailed
from custody.session import Session
from custody.vault import exit as vault_exit
from custody.vault import service

Step = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]
PLAYBOOK = "emergency-exit.yaml"


def drill_section(
    step: Step, session: Session, vault_name: str, initiators: tuple[str, str], folder: Path
) -> dict[str, Any]:
    """Run the emergency-exit drill on ``vault_name`` (snapshot mode); returns the pilot's summary of it.

    ``initiators`` are two signer URIs that may initiate the exit (the cold vault's owners); the first
    also cancels the first request. Raises :class:`DrillFailed` (with the report path) if any step
    does not go as the playbook expects, or if the chain is not restored.
    """
    playbook = load_playbook(_paths.PLAYBOOKS_DIR / PLAYBOOK)
    vault = service.get_vault(session, vault_name)
    status = vault_exit.status(session, vault.id)
    custodian = status.custodians[0]
    chain = session.chain
    safe = to_checksum_address(vault.safe)  # already checksummed; typed as web3 expects

    def run() -> dict[str, Any]:
        before = (chain.w3.eth.block_number, chain.w3.eth.get_balance(safe))
        options = DrillOptions(
            vault=vault_name,
            out=folder,
            attester=session.attester_uri,
            params={"custodian": custodian, "initiators": ",".join(initiators), "canceller": initiators[0]},
        )
        report = run_drill(session.workspace, playbook, options, chain=chain)
        data = report.data
        after = (chain.w3.eth.block_number, chain.w3.eth.get_balance(safe))
        # restored: the vault holds what it held and the drill started from the pilot's head (blocks mined
        # after the revert are the drill badge's attestation, not the rehearsal)
        restored = (
            data["run"]["chain"]["restored"]
            and before[1] == after[1]
            and data["run"]["chain"]["block_start"] == before[0]
        )
        if not report.passed or not restored:
            failed = ", ".join(str(f["step"]) for f in data["failures"]) or "none"
            raise DrillFailed(
                f"pilot: the emergency-exit drill on {vault_name} did not pass (failed steps: {failed}; chain restored: "
                f"{restored}); report {report.html_path}",
                report=str(report.json_path),
            )
        swept: dict[str, str] = next(  # asset symbol -> amount swept (finalize_exit's observation)
            (
                s["observed"]["data"]["swept"]
                for s in reversed(data["steps"])
                if s["action"] == "finalize_exit" and s["observed"]["ok"]
            ),
            {},
        )
        return {
            "playbook": data["drill"]["playbook"],
            "playbook_sha256": data["drill"]["playbook_sha256"],
            "vault": vault_name,
            "safe": vault.safe,
            "custodian": custodian,
            "initiators": list(initiators),
            "mode": data["run"]["mode"],
            "verdict": data["verdict"],
            "steps": data["summary"]["steps"],
            "passed": data["summary"]["passed"],
            "failed": data["summary"]["failed"],
            "skipped": data["summary"]["skipped"],
            "seconds": data["run"]["seconds"],
            "would_sweep": swept,
            "chain_restored": restored,
            "block": before[0],
            "vault_balance_wei": str(after[1]),
            "blocks_rehearsed": [data["run"]["chain"]["block_start"], data["run"]["chain"]["block_end"]],
            "duplicate_nonce_broadcasts": len(data["rpc"]["duplicate_nonce_broadcasts"]),
            "json": str(report.json_path),
            "html": str(report.html_path),
            "records": data.get("records"),
        }

    return step(f"drill: rehearse the emergency exit of {vault_name} to its fallback custodian on a snapshot", run)
