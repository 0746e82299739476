"""Canaries through the recorded flows — a private key, a keystore passphrase, a TOTP secret, a challenge
code and an e-mail address (personal data) — never reach the ledger's entries or any export (JSONL, CSV,
HTML, bundle), while the flows themselves are recorded."""

from __future__ import annotations

import json
import tarfile
from urllib.parse import parse_qs, urlparse

from custody.audit import service as audit_service
from custody.audit.record import ledger_for
from custody.signers.local import anvil_signer
from custody.vault import oob, proposals, service
from tests.signer_fixtures import policy_with_owners

CANARY_KEY = bytes.fromhex("c0ffee" * 10 + "beef")
CANARY_PASS = "canary-ledger-passphrase-7Hq2"
CANARY_EMAIL = "jane.canary@example.org"
CANARY_PHONE = "+41 79 555 12 34"
PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def test_secrets_and_personal_data_never_reach_the_ledger_or_exports(run_cli, session, workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.hex").write_text("0x" + CANARY_KEY.hex())
    (outside / "pass").write_text(CANARY_PASS + "\n")
    env = {"CUSTODY_KEYSTORE_PASSPHRASE_FILE": str(outside / "pass")}
    imported = run_cli("key", "import", "canary", "--key-file", str(outside / "key.hex"), "--json", env=env)
    assert imported.exit_code == 0, imported.stderr
    address = json.loads(imported.stdout)["address"]
    policy = policy_with_owners(tmp_path, [address, anvil_signer(2).address], threshold=1, name="canary")
    vault, _ = service.create_vault(session, policy)
    session.send(to=vault.safe, value=10**18, what="fund")
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.1", proposer="ops",
                                  description=f"settlement, questions to {CANARY_EMAIL} or {CANARY_PHONE}")  # fmt: skip
    signed = run_cli("tx", "sign", str(proposal.id), "--signer", "keystore:canary", env=env)
    assert signed.exit_code == 0, signed.stderr
    passphrase = "canary oob passphrase"
    oob.enroll(workspace, "ops", passphrase=passphrase)  # the proposer, a known person
    uri = oob.enroll(workspace, "risk-officer", passphrase=passphrase)
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert secret.encode() not in (workspace.home / "oob" / "risk-officer.totp.sealed").read_bytes()
    code, _ = oob.issue_challenge(session, proposal, "risk-officer", issued_by="ops", passphrase=passphrase)
    oob.confirm_with_code(session, proposal, "risk-officer", code, passphrase=passphrase)
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    kinds = [e.kind for e in ledger_for(session.store).entries()]
    assert kinds == ["vault_created", "proposal_created", "risk_decision", "risk_decision", "approval_signed",
                     "confirmer_enrolled", "confirmer_enrolled", "out_of_band_confirmation", "risk_decision",
                     "execution"]  # fmt: skip
    out = tmp_path / "exports"
    for fmt, name in (("jsonl", "l.jsonl"), ("csv", "l.csv"), ("html", "r.html"), ("bundle", "b.tar.gz")):
        result = run_cli("audit", "export", "--format", fmt, "--out", str(out / name))
        assert result.exit_code == 0, result.stderr
    blobs = {"ledger entries": b"\n".join(blob for _s, _l, blob in ledger_for(session.store).rows())}
    for path in out.iterdir():
        blobs[path.name] = path.read_bytes()
    with tarfile.open(out / "b.tar.gz") as tar:
        for member in tar.getmembers():
            blobs[f"bundle:{member.name}"] = tar.extractfile(member).read()
    needles = {
        "private key": CANARY_KEY.hex().encode(), "private key (upper)": CANARY_KEY.hex().upper().encode(),
        "passphrase": CANARY_PASS.encode(), "oob passphrase": passphrase.encode(), "TOTP secret": secret.encode(), "challenge code": code.encode(),
        "e-mail": CANARY_EMAIL.encode(), "phone": CANARY_PHONE.encode(),
    }  # fmt: skip
    for where, blob in blobs.items():
        for what, needle in needles.items():
            assert needle not in blob, f"the canary {what} reached {where}"
    # the flows are still fully recorded and the bundle verifies
    assert b"settlement, questions to [redacted] or [redacted]" in blobs["ledger entries"]
    assert address.lower().encode() in blobs["ledger entries"].lower()
    assert audit_service.verify(bundle=out / "b.tar.gz").exit_code == 0


def test_redaction_masks_secret_keys_and_personal_data_but_keeps_hashes():
    from custody.audit.export import REDACTED, redact

    value = {
        "passphrase": "p", "pin": "1234", "totp_secret": "JBSWY3DP", "private_key": "0x" + "11" * 32,
        "nested": [{"challenge_code": "48213377", "value": "1000000000000000000", "note": "mail a.b@c.io"}],
        "tx_hash": "0x" + "ab" * 32, "codehash": "0x" + "cd" * 32, "amount": "12345678901234567890",
    }  # fmt: skip
    out = redact(value)
    assert [out[k] for k in ("passphrase", "pin", "totp_secret", "private_key")] == [REDACTED] * 4
    assert out["nested"][0] == {"challenge_code": REDACTED, "value": "1000000000000000000", "note": f"mail {REDACTED}"}
    assert (
        out["tx_hash"] == value["tx_hash"] and out["codehash"] == value["codehash"] and out["amount"] == value["amount"]
    )
