"""Test-only driver for the SIGKILL tests (tests/test_kill_resume.py).

A single-threaded process that imports the toolkit once and then, per request on stdin, forks a child
that runs one whole transfer flow through the service layer — propose → sign (owner A) → sign (owner B)
→ execute (→ record) — exactly as the CLI commands would, in a fresh session. Forking keeps a run to
milliseconds instead of an interpreter start. The test kills children with SIGKILL from outside; the
driver only reaps them. Nothing here changes how the toolkit behaves.

Protocol (one JSON object per line): ``{"op": "run", "home", "rpc", "vault", "to", "amount", "signers"}``
→ ``{"pid": N}``; ``{"op": "wait", "pid": N}`` → ``{"signal": S | null, "code": C | null}``.
"""

from __future__ import annotations

import json
import os
import sys

import custody.cli
import custody.policy.onchain
import custody.vault.timelock_ops  # noqa: F401
from custody.contracts.errors import decode_revert
from custody.session import Session
from custody.signers.local import anvil_signer
from custody.vault import proposals


def flow(cmd: dict) -> None:
    session = Session.open(cmd["home"], rpc=cmd["rpc"], autostart=False)
    proposal = proposals.propose_transfer(
        session, cmd["vault"], to=cmd["to"], amount=cmd["amount"], proposer="kill-test"
    )
    for index in cmd["signers"]:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(index))
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    session.close()


def main() -> None:
    decode_revert(b"\x00" * 4)  # loads every ABI's custom errors once
    for signer in range(10):
        anvil_signer(signer)  # derives the dev keys once
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    flow(cmd)
                except BaseException as exc:  # reported to the test through the exit code and stderr
                    sys.stderr.write(f"flow failed: {type(exc).__name__}: {exc}\n")
                    sys.stderr.flush()
                    code = 1
                os._exit(code)
            print(json.dumps({"pid": pid}), flush=True)
        elif cmd["op"] == "wait":
            _pid, status = os.waitpid(cmd["pid"], 0)
            signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            print(json.dumps({"signal": signal, "code": code}), flush=True)


if __name__ == "__main__":
    main()
