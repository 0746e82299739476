"""Transfer proposals: propose → sign (one owner per CLI call, any backend) → execute.

A proposal is a :class:`SafeTx` stored in the workspace with the owner signatures collected for it.
Before anything is signed or sent, the locally computed safeTxHash is checked against the Safe's own
``getTransactionHash``; signatures are verified, low-s normalised and de-duplicated per owner.
Execution is refused (and nothing is broadcast) when fewer valid owner signatures than the threshold
exist.

One module per concern; this package re-exports the names the rest of custody, the tests, scripts and
benchmarks use:

* :mod:`~custody.vault.proposals.model` — :class:`Proposal` and its :class:`ProposalState`
* :mod:`~custody.vault.proposals.storage` — the workspace's proposals: load, look up, list, change state
* :mod:`~custody.vault.proposals.safe_reads` — what the vault's Safe says (nonce, owners, threshold, hash)
* :mod:`~custody.vault.proposals.checks` — open/stale/hash, policy pre-flight and risk checks before each step
* :mod:`~custody.vault.proposals.proposing` — propose (a transfer), discard
* :mod:`~custody.vault.proposals.signing` — owner approvals (signer backends, offline signatures)
* :mod:`~custody.vault.proposals.execution` — execute, journaled and resumable
* :mod:`~custody.vault.proposals.review` — what a signer sees before signing
"""

from custody.vault.proposals.checks import score_risk
from custody.vault.proposals.execution import _finalize, exec_calldata, execute
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.proposals.proposing import discard, propose, propose_transfer
from custody.vault.proposals.review import describe
from custody.vault.proposals.safe_reads import onchain_hash, owners_and_threshold, safe_nonce
from custody.vault.proposals.signing import add_signature, sign
from custody.vault.proposals.storage import get_proposal, list_proposals, waiting_behind

__all__ = [
    "Proposal",
    "ProposalState",
    "_finalize",
    "add_signature",
    "describe",
    "discard",
    "exec_calldata",
    "execute",
    "get_proposal",
    "list_proposals",
    "onchain_hash",
    "owners_and_threshold",
    "propose",
    "propose_transfer",
    "safe_nonce",
    "score_risk",
    "sign",
    "waiting_behind",
]
