"""One exception tree for the whole toolkit.

Every failure a user can cause or meet surfaces as a :class:`CustodyError` whose ``str()`` is one
specific sentence; the CLI prints that sentence and exits non-zero (no traceback). Foreign errors
(web3, requests, solc, ...) are translated once, at the adapter that calls them, keeping the cause
(``raise ... from exc``). Builtins are mixed in where callers expect them (``ValueError`` for bad
input, ``LookupError`` for unknown names, ``TimeoutError`` for waits).

    CustodyError
    ├── InputError(ValueError)                 bad user input
    │   ├── ExchangeFileError                  offline-signing file malformed or inconsistent
    │   ├── AddressError                       malformed / bad-checksum address
    │   ├── AmountError                        unparsable, negative, too many decimals
    │   ├── TemplateError                      policy template unreadable or invalid
    │   └── BarListError                       bar list unreadable or with invalid rows (exit code 3)
    ├── WorkspaceError                         workspace folder / database problems
    ├── BuildError                             compile pipeline
    │   └── ArtifactMismatch                   committed artifact differs from a rebuild
    ├── ChainError                             talking to a chain
    │   ├── RpcUnreachable(ConnectionError)    refused / timed out / transient errors, after the retries
    │   ├── ChainIdMismatch
    │   ├── ForeignChain                       same chain id, but not the chain this workspace recorded (exit 5)
    │   ├── ChainNotRunning
    │   ├── AnvilError                         the local Anvil process
    │   ├── TransactionFailed                  reverted on chain or in estimation (decoded reason)
    │   ├── NonceConsumed                      a signed tx can never be mined: another tx used its nonce
    │   └── ReceiptTimeout(TimeoutError)
    ├── DeploymentError                        infrastructure / registry inconsistencies
    ├── ReconcileError                         collateral reconciliation cannot run (token, index, block)
    ├── AuditError                             audit ledger: malformed entry, unusable key, bad request
    │   ├── LedgerTampered                     recomputation disagrees with the stored log/heads (exit 2)
    │   ├── LedgerChainMismatch                entries disagree with the chain or miss executions (exit 3)
    │   ├── LedgerLocked                       another process holds the ledger's writer lock
    │   ├── LedgerKeyError                     ledger signing key missing, unreadable or wrong kind
    │   └── BundleError                        an exported bundle cannot be read
    ├── VaultError
    │   └── UnknownVault(LookupError)
    ├── ProposalError
    │   ├── UnknownProposal(LookupError)
    │   ├── HashMismatch                       local hash != Safe.getTransactionHash
    │   ├── StaleProposal                      the Safe nonce moved past the proposal
    │   ├── NotEnoughSignatures
    │   ├── AlreadyExecuted
    │   ├── PolicyViolation                    the vault's guard would reject it (verdict attached)
    │   ├── TimelockNotReady                   a scheduled change is still in its delay
    │   │   └── OperationAlreadyExecuted       … or done already (also an AlreadyExecuted)
    │   ├── RiskNotAcknowledged                risky payload signed without --i-understand KIND
    │   ├── ConfirmationRequired               out-of-band confirmation missing where policy asks
    │   ├── ConfirmationError                  wrong / expired code, confirmer is the proposer, …
    │   ├── RiskDenied                         the pre-sign risk engine denied (decision attached)
    │   └── RiskRequirementMissing             a Warn verdict's requirements (confirmation, signers) unmet
    ├── RiskError                              risk engine data: damaged model file, unreadable list
    ├── DrillError                             a drill cannot run (chain mode, setup, unknown vault alias)
    │   ├── PlaybookError(ValueError)          playbook unreadable or invalid (file:line:field problems)
    │   └── DrillFailed                        a drill ran and an expectation failed (exit code 2)
    └── SignerError
        ├── SignerUriError(ValueError)         unknown scheme / malformed URI
        ├── DeviceNotFound                     token / device / keystore file not found
        ├── SignerLocked                       locked, wrong PIN or passphrase
        ├── UserRejected                       rejected on the device
        ├── UnsupportedOperation
        ├── KeyNotFound
        ├── NotAnOwner                         signer is not an owner of the vault
        └── SignatureError(ValueError)         malformed / non-recovering signature blob
"""

from __future__ import annotations

from typing import Any


class CustodyError(Exception):
    """Root of every error raised by the toolkit.

    ``details`` carries machine-readable data (which rule, which limit, which address) for
    ``--json`` output; ``hint`` is an optional next step shown to people.
    """

    exit_code: int = 1  # what the CLI exits with; a few input errors have their own code

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    @property
    def code(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        if self.details:
            data["details"] = {k: _jsonable(v) for k, v in self.details.items()}
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# -- input -------------------------------------------------------------------------------------
class InputError(CustodyError, ValueError):
    """The user gave us something we cannot use."""


class ExchangeFileError(InputError):
    """An offline-signing exchange file is malformed, or its hashes do not match its contents."""


class AddressError(InputError):
    """Malformed address or one whose EIP-55 checksum does not match."""


class AmountError(InputError):
    """Unparsable amount, negative, zero where not allowed, or too many decimals."""


class TemplateError(InputError):
    """A policy template that cannot be read or does not validate."""


class BarListError(InputError):
    """A bar list that cannot be read or has invalid rows; ``details['errors']`` lists every row error."""

    exit_code = 3


# -- local state -------------------------------------------------------------------------------
class WorkspaceError(CustodyError):
    """The workspace folder or its database cannot be used."""


class BuildError(CustodyError):
    """Compiling the contracts failed or the toolchain is missing."""


class ArtifactMismatch(BuildError):
    """A committed artifact differs from what the compiler produces now."""


# -- chain -------------------------------------------------------------------------------------
class ChainError(CustodyError):
    """Talking to a chain failed."""


class RpcUnreachable(ChainError, ConnectionError):
    """The RPC endpoint does not answer usefully: refused, timed out, or transient errors after the retries."""


class ChainIdMismatch(ChainError):
    """The endpoint serves a different chain than expected."""


class ForeignChain(ChainError):
    """The endpoint serves this chain id, but its genesis or a recorded block differs from what the workspace
    recorded at first contact: a look-alike or reset chain. Nothing was written."""

    exit_code = 5  # 4 is taken by reconcile (backed, but critical findings)


class ChainNotRunning(ChainError):
    """No local chain is running for this workspace and none could be started."""


class AnvilError(ChainError):
    """The local Anvil process could not be found, started or stopped."""


class TransactionFailed(ChainError):
    """A transaction reverted (on chain or during gas estimation); carries the decoded reason."""


class NonceConsumed(ChainError):
    """A signed transaction can never be mined: its sender's nonce was used by a different transaction."""


class ReceiptTimeout(ChainError, TimeoutError):
    """A sent transaction was not mined within the wait limit."""


class DeploymentError(CustodyError):
    """Infrastructure is missing, or the registry disagrees with the chain."""


class ReconcileError(CustodyError):
    """A collateral reconciliation cannot run: no such token, inconsistent index, block out of range."""


# -- audit ledger ------------------------------------------------------------------------------
class AuditError(CustodyError):
    """The audit ledger cannot do what was asked (malformed entry, unknown head or entry, ...)."""


class LedgerTampered(AuditError):
    """The ledger does not verify; ``details['first_bad_sequence']`` names the first bad entry."""

    exit_code = 2

    def __init__(self, message: str, *, first_bad_sequence: int | None = None, **details: Any) -> None:
        super().__init__(message, first_bad_sequence=first_bad_sequence, **details)
        self.first_bad_sequence = first_bad_sequence


class LedgerChainMismatch(AuditError):
    """Ledger entries disagree with the chain, or on-chain executions have no ledger entry."""

    exit_code = 3


class LedgerLocked(AuditError):
    """Another process holds the ledger's writer lock (appends are serialised, never forked)."""


class LedgerKeyError(AuditError):
    """The ledger signing key is missing, unreadable, or not a supported kind."""


class BundleError(AuditError):
    """An audit bundle cannot be read or is missing a required part."""


# -- vaults and proposals ----------------------------------------------------------------------
class VaultError(CustodyError):
    """A vault operation failed."""


class UnknownVault(VaultError, LookupError):
    """No vault by that name or id in this workspace."""


class ProposalError(CustodyError):
    """A transfer proposal cannot proceed."""


class UnknownProposal(ProposalError, LookupError):
    """No proposal by that id or safeTxHash."""


class HashMismatch(ProposalError):
    """The locally computed safeTxHash differs from the Safe's on-chain computation."""


class StaleProposal(ProposalError):
    """The Safe's nonce moved past the proposal's nonce."""


class NotEnoughSignatures(ProposalError):
    """Fewer valid owner signatures than the Safe's threshold."""


class AlreadyExecuted(ProposalError):
    """The proposal was executed already."""


class PolicyViolation(ProposalError):
    """The vault's on-chain policy (its CustodyGuard) would reject the transaction."""


class TimelockNotReady(ProposalError):
    """A timelocked operation cannot run yet (still in its delay), or no longer (done / cancelled)."""


class OperationAlreadyExecuted(TimelockNotReady, AlreadyExecuted):
    """A timelock operation that was executed already (``details['tx_hash']`` when this workspace knows it)."""


class RiskNotAcknowledged(ProposalError):
    """A risky payload (delegatecall, owner/threshold/module/guard changes, …) was not acknowledged."""


class ConfirmationRequired(ProposalError):
    """The vault's policy requires an out-of-band confirmation that has not been recorded."""


class ConfirmationError(ProposalError):
    """An out-of-band confirmation was refused (wrong code, proposer confirming, unknown confirmer)."""


class RiskDenied(ProposalError):
    """The pre-sign risk engine's verdict is Deny: nothing was signed, stored or sent."""


class RiskRequirementMissing(ProposalError):
    """The verdict is Warn and what the template requires for Warn (confirmation, extra signers) is missing."""


class RiskError(CustodyError):
    """Risk engine data problems: a damaged model file, an unreadable sanctions list."""


# -- drills ------------------------------------------------------------------------------------
class DrillError(CustodyError):
    """A drill cannot run: no local chain to snapshot, an unknown vault alias, a failed setup."""


class PlaybookError(DrillError, ValueError):
    """A drill playbook that cannot be read or does not validate; ``details['problems']`` lists them."""


class DrillFailed(DrillError):
    """A drill ran and at least one expectation failed; ``details`` names the report and the failing steps."""

    exit_code = 2


# -- signers -----------------------------------------------------------------------------------
class SignerError(CustodyError):
    """A signer could not produce a signature."""


class SignerUriError(SignerError, ValueError):
    """Unknown signer scheme or malformed signer URI."""


class DeviceNotFound(SignerError):
    """Token, device or keystore file not found."""


class SignerLocked(SignerError):
    """Signer locked: wrong PIN or passphrase."""


class UserRejected(SignerError):
    """The user rejected the request on the device."""


class UnsupportedOperation(SignerError):
    """The signer cannot perform this kind of signature."""


class KeyNotFound(SignerError):
    """No key by that name on the token / in the keystore."""


class NotAnOwner(SignerError):
    """The signer is not an owner of the vault it tries to approve for."""


class SignatureError(SignerError, ValueError):
    """A signature blob is malformed or does not recover to the claimed signer."""


# -- attestations --------------------------------------------------------------------------------
class AttestationError(CustodyError):
    """An attestation could not be issued, revoked, read or verified."""


class UnknownAttestation(AttestationError, LookupError):
    """No attestation with that UID (on chain, in the workspace or in the given file)."""


__all__ = [name for name, obj in list(globals().items()) if isinstance(obj, type) and issubclass(obj, Exception)]
