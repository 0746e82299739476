"""Contract artifacts (ours, compiled and committed; Safe's, from safe-eth-py) and deploy helpers."""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from custody import _paths
from custody.exceptions import BuildError


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[Any]
    bytecode: bytes
    deployed_bytecode: bytes
    source: str  # "custody" (compiled here) or "safe-eth-py"

    def errors(self) -> list[dict[str, Any]]:
        return [item for item in self.abi if item.get("type") == "error"]


SAFE_ARTIFACTS = {
    # name in our registry → safe-eth-py bundled artifact (Safe v1.4.1, official build)
    "SafeL2": "Safe_V1_4_1",
    "SafeProxyFactory": "ProxyFactory_V1_4_1",
    "CompatibilityFallbackHandler": "CompatibilityFallbackHandler_V1_4_1",
    "MultiSendCallOnly": "MultiSendCallOnly_V1_4_1",
    "MultiSend": "MultiSend_V1_4_1",
}


# Vendored third-party artifacts (ABI + bytecode exactly as published on npm).
VENDORED_ARTIFACTS = {
    "EAS": "eas/EAS.json",
    "SchemaRegistry": "eas/SchemaRegistry.json",
}


def _safe_eth_abis() -> Path:
    """safe-eth-py's bundled artifact folder, found without importing ``safe_eth.eth``: that package imports
    py-evm, about a second of start-up that no command reading a Safe's ABI needs
    (benchmarks/snapshots/startup.json)."""
    spec = importlib.util.find_spec("safe_eth")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("safe-eth-py is not installed: it provides the Safe v1.4.1 artifacts")
    return Path(next(iter(spec.submodule_search_locations))) / "eth" / "contracts" / "abis"


@functools.cache
def load_artifact(name: str) -> Artifact:
    """Load a contract artifact by name: ours, the bundled Safe v1.4.1 contracts, or vendored ones."""
    if name in VENDORED_ARTIFACTS:
        data = json.loads(resources.files("custody.contracts").joinpath("vendor", VENDORED_ARTIFACTS[name]).read_text())
        source = "vendored"
    elif name in SAFE_ARTIFACTS:
        data = json.loads(_safe_eth_abis().joinpath(f"{SAFE_ARTIFACTS[name]}.json").read_text())
        source = "safe-eth-py"
    else:
        path = _paths.ARTIFACTS_DIR / f"{name}.json"
        if not path.exists():
            raise BuildError(f"no compiled artifact for contract {name!r}; run `custody build`")
        data = json.loads(path.read_text())
        source = "custody"
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
        source=source,
    )


def all_artifact_names() -> list[str]:
    ours = sorted(p.stem for p in _paths.ARTIFACTS_DIR.glob("*.json"))
    return ours + sorted(SAFE_ARTIFACTS) + sorted(VENDORED_ARTIFACTS)
