"""The end-to-end pilot (`custody pilot`): a demonstration run on a fresh local chain, kept out of the
domain packages. It uses the domains as any caller would.

    main.py       the run: chain, infrastructure, vaults, transfers, then the sections below, summarised
    policy.py     what the on-chain guard refuses; a policy change through the timelock
    attest.py     KYC badges, transfer badges, inventory tags, sign-off, verification (also as an auditor)
    reconcile.py  the tokenized-collateral section: issuer vault, minted batches, reconciliations
    risk.py       the risk engine: lookalike, sanctioned destination, off-hours transfer
    drills.py     the cold vault's emergency exit rehearsed on a snapshot
    audit.py      index, verify, anchor and export the pilot's own ledger
"""
