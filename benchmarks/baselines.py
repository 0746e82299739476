"""Baselines as a capable user would write them without custody: the strongest plain-library route to
the same result, measured in the same run as ours."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic


def eth_abi_logs(chain: Any, address: str, event_abi: dict, start: int, head: int, *, chunk: int = 2_000) -> list[dict]:
    """Raw ``eth_getLogs`` in ``chunk``-block ranges, each log decoded with eth_abi: topics for indexed
    arguments, one ``decode`` of the data for the rest. Returns block, log index and arguments per log."""
    topic0 = "0x" + event_abi_to_log_topic(event_abi).hex()
    inputs = event_abi["inputs"]
    indexed = [(item["name"], item["type"]) for item in inputs if item["indexed"]]
    data_names = [item["name"] for item in inputs if not item["indexed"]]
    data_types = [item["type"] for item in inputs if not item["indexed"]]
    decoded = []
    for first in range(start, head + 1, chunk):
        logs = chain.rpc(
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(first),
                    "toBlock": hex(min(first + chunk - 1, head)),
                    "address": address,
                    "topics": [topic0],
                }
            ],
        )
        for log in logs:
            args = {
                name: decode([kind], bytes.fromhex(topic[2:]))[0]
                for (name, kind), topic in zip(indexed, log["topics"][1:])
            }
            args.update(zip(data_names, decode(data_types, bytes.fromhex(log["data"][2:]))))
            decoded.append(
                {"blockNumber": int(log["blockNumber"], 16), "logIndex": int(log["logIndex"], 16), "args": args}
            )
    return decoded
