"""Tokenized collateral reconciliation: bar lists (off-chain provenance) against CollateralToken's
on-chain record (allocations, mints, burns, transfers).

    barlist.py   the bar list as columnar values, bar ids, units, the refiner list
    ingest.py    CSV/JSON reading and row/column validation (rules.py: the per-value rules)
    token.py     CollateralToken: deployment and issuer calls (through the issuer vault's Safe)
    index.py     indexing the token's events (generic engine: custody.chain.logs) and loading them
    engine.py    the reconciliation itself: findings with severity and evidence
    report.py    HTML report with charts
    service.py   one reconciliation run: index, load, reconcile, record
    issuance.py  issuing bars: allocate a batch and mint against it through the issuer vault
    ledger.py    the audit-ledger hook (reconciliation_run entries)
    findings.py  finding kinds, severities, evidence
"""
