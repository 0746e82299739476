"""Pre-sign risk engine: every proposal, signature and execution is scored before anything is released.

Layers (each a module with one concern): :mod:`firewall` (deterministic rules), :mod:`poisoning`
(lookalike destinations and their precursors), :mod:`sanctions` (screening lists and an optional
on-chain oracle), :mod:`anomaly` (per-vault baseline trained from the vault's own history).
:mod:`engine` combines them into one :class:`~custody.risk.verdict.Decision` (Accept / Warn / Deny),
fail-closed; :mod:`gate` gathers the inputs from a session, records every decision in the audit ledger
and enforces what the template's ``risk:`` section requires of each band.
"""

from custody.risk.verdict import Decision, Reason, Verdict

__all__ = ["Decision", "Reason", "Verdict"]
