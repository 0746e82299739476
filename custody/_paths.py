"""Where things live: the package, the source checkout around it, and the npm toolchain."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
NODE_MODULES = REPO_ROOT / "node_modules"
# $CUSTODY_ARTIFACTS_DIR points the runtime at another build of the contracts (contract mutation runs
# rebuild a changed copy into a temporary folder and run the tests against it).
ARTIFACTS_DIR = Path(os.environ.get("CUSTODY_ARTIFACTS_DIR") or PACKAGE_DIR / "contracts" / "artifacts")
SOLC_WRAPPER = REPO_ROOT / "scripts" / "solc"
POLICIES_DIR = REPO_ROOT / "policies"
PLAYBOOKS_DIR = REPO_ROOT / "playbooks"


def foundry_binary(name: str) -> Path:
    """Path of a Foundry binary (anvil, forge, cast) shipped by the pinned npm package."""
    return NODE_MODULES / "@foundry-rs" / f"{name}-linux-amd64" / "bin" / name
