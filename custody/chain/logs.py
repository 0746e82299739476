"""Fast, resumable, reorg-safe log indexing: raw ``eth_getLogs`` + decoding by slicing.

Generic chain plumbing (no custody concepts), shared by every indexer in the toolkit:

* :class:`EventLayout` — precomputed from an ABI event: topic0 and, per field, where its 32-byte word
  sits (a topic or a data slot) and how to turn it into a value. Decoding a log is a few string slices
  and ``int(…, 16)`` calls — no web3 contract/event machinery (which is ~30× slower).
* :class:`LogIndexer` — fetches block ranges in chunks, several ``eth_getLogs`` per JSON-RPC batch,
  decodes them, and hands each chunk to a *sink* that writes it **in the same database transaction**
  that advances the stream's cursor (``log_cursors``) and stores the hashes of the indexed blocks
  (``log_blocks``). A crash therefore never leaves rows without a cursor or a cursor without rows;
  the next :meth:`LogIndexer.sync` resumes after the last committed chunk.
* Reorgs: before fetching, the stored hashes of the most recent indexed blocks are compared with the
  chain. On a mismatch the fork point is the highest stored block that still matches; everything
  above it is rolled back (the sink's ``rollback`` deletes its rows in the same transaction) and
  re-indexed. Stored blocks are every block that had a log plus each chunk's last block.

Decoded values: ``address`` → lowercase ``0x…`` string (checksumming a million addresses costs
seconds; compare case-insensitively), ``uintN``/``intN`` → int, ``bool`` → bool, ``bytesN`` →
bytes, indexed dynamic types → the 32-byte topic (its hash). Dynamic types in data fall back to
``eth_abi`` for that event only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from eth_abi import decode as abi_decode
from eth_utils import keccak
from sqlalchemy.engine import Connection

from custody._progress import Progress
from custody.chain.connection import Chain
from custody.exceptions import ChainError, InputError
from custody.store import Store, log_blocks, log_cursors, utcnow

if TYPE_CHECKING:
    from web3.providers import JSONBaseProvider

_STATIC_DYNAMIC = ("string", "bytes")


class DecodedLog(NamedTuple):
    """One decoded log. ``values`` follow the event's ABI field order."""

    block_number: int
    log_index: int
    tx_hash: str
    block_hash: str
    address: str  # lowercase
    event: str
    values: tuple[Any, ...]


def _word_converter(abi_type: str) -> Callable[[str], Any]:
    """How to turn one 64-hex-digit word into a value of ``abi_type``."""
    if abi_type == "address":
        return lambda w: "0x" + w[24:]
    if abi_type.startswith("uint"):
        return lambda w: int(w, 16)
    if abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)

        def signed(w: str) -> int:
            value = int(w, 16) & ((1 << bits) - 1)
            return value - (1 << bits) if value >> (bits - 1) else value

        return signed
    if abi_type == "bool":
        return lambda w: w[-1] != "0"
    if abi_type.startswith("bytes") and abi_type[5:].isdigit():
        size = int(abi_type[5:])
        return lambda w: bytes.fromhex(w[: 2 * size])
    raise InputError(f"type {abi_type} cannot be decoded from a single word")


def _is_static_word(abi_type: str) -> bool:
    if abi_type.endswith("]") or abi_type.startswith("(") or abi_type in _STATIC_DYNAMIC:
        return False
    return abi_type in ("address", "bool") or abi_type.startswith(("uint", "int", "bytes"))


@dataclass(frozen=True)
class EventLayout:
    """Where each field of one event lives in a log, and how to decode it."""

    name: str
    signature: str
    topic0: str  # 0x-prefixed lowercase hex
    field_names: tuple[str, ...]
    field_types: tuple[str, ...]
    indexed: tuple[bool, ...]
    _plan: tuple[Any, ...] = field(repr=False, compare=False, default=())
    _data_types: tuple[str, ...] | None = field(repr=False, compare=False, default=None)

    @classmethod
    def from_abi(cls, item: dict[str, Any]) -> EventLayout:
        if item.get("type") != "event" or item.get("anonymous"):
            raise InputError(f"{item.get('name', '?')} is not a non-anonymous ABI event")
        types = tuple(_canonical_type(i) for i in item["inputs"])
        signature = f"{item['name']}({','.join(types)})"
        names = tuple(i["name"] or f"arg{n}" for n, i in enumerate(item["inputs"]))
        indexed = tuple(bool(i.get("indexed")) for i in item["inputs"])
        plan: list[tuple[str, int, Callable[[str], Any] | None]] = []  # (source: "t"|"d", position, converter)
        topic_pos, data_pos = 1, 0
        data_static = all(_is_static_word(t) for t, ix in zip(types, indexed) if not ix)
        for abi_type, is_indexed in zip(types, indexed):
            if is_indexed:
                converter = _word_converter(abi_type) if _is_static_word(abi_type) else _word_converter("bytes32")
                plan.append(("t", topic_pos, converter))
                topic_pos += 1
            else:
                plan.append(("d", data_pos, _word_converter(abi_type) if data_static else None))
                data_pos += 1
        data_types = None if data_static else tuple(t for t, ix in zip(types, indexed) if not ix)
        return cls(
            name=item["name"],
            signature=signature,
            topic0="0x" + keccak(text=signature).hex(),
            field_names=names,
            field_types=types,
            indexed=indexed,
            _plan=tuple(plan),
            _data_types=data_types,
        )

    def decode(self, topics: Sequence[str], data: str) -> tuple[Any, ...]:
        """Field values (ABI order) from a raw log's hex ``topics`` and hex ``data``."""
        if self._data_types is not None:
            decoded = iter(abi_decode(list(self._data_types), bytes.fromhex(data[2:])))
            return tuple(conv(topics[pos][2:]) if src == "t" else next(decoded) for src, pos, conv in self._plan)
        return tuple(
            conv(topics[pos][2:]) if src == "t" else conv(data[2 + 64 * pos : 66 + 64 * pos])
            for src, pos, conv in self._plan
        )


def _canonical_type(item: dict[str, Any]) -> str:
    abi_type = item["type"]
    if abi_type.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in item["components"])
        return f"({inner}){abi_type[5:]}"
    return str(abi_type)


def layouts_from_abi(abi: Iterable[dict[str, Any]], names: Iterable[str] | None = None) -> dict[str, EventLayout]:
    """topic0 → layout for the ABI's events (only ``names`` if given)."""
    wanted = set(names) if names is not None else None
    layouts = {}
    for item in abi:
        if item.get("type") == "event" and not item.get("anonymous") and (wanted is None or item["name"] in wanted):
            layout = EventLayout.from_abi(item)
            layouts[layout.topic0] = layout
    if wanted is not None and {lay.name for lay in layouts.values()} != wanted:
        missing = wanted - {lay.name for lay in layouts.values()}
        raise InputError(f"the ABI has no event(s) named {', '.join(sorted(missing))}")
    return layouts


def decode_logs(raw_logs: Iterable[dict[str, Any]], layouts: dict[str, EventLayout]) -> list[DecodedLog]:
    """Decode raw JSON-RPC log objects; logs whose topic0 has no layout are skipped."""
    out: list[DecodedLog] = []
    append = out.append
    get = layouts.get
    for log in raw_logs:
        topics = log["topics"]
        if not topics:
            continue
        layout = get(topics[0])
        if layout is None:
            continue
        append(
            DecodedLog(
                int(log["blockNumber"], 16),
                int(log["logIndex"], 16),
                log["transactionHash"],
                log["blockHash"],
                log["address"].lower(),
                layout.name,
                layout.decode(topics, log["data"]),
            )
        )
    return out


# -- raw JSON-RPC ---------------------------------------------------------------------------------
def rpc_batch(chain: Chain, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """Several JSON-RPC calls in one HTTP request; results in order. Any error raises ChainError."""
    if not calls:
        return []
    responses = chain.call(_json_rpc(chain).make_batch_request, list(calls))
    if isinstance(responses, dict):  # the node rejected the batch as a whole
        error = responses.get("error", responses)
        raise ChainError(f"JSON-RPC batch of {len(calls)} call(s) failed: {error}", rpc_error=error)
    results = []
    for (method, _params), response in zip(calls, responses):
        if "error" in response:
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainError(f"{method} failed: {message}", rpc_error=error)
        results.append(response["result"])
    return results


def _block_hashes(chain: Chain, numbers: Sequence[int]) -> dict[int, str | None]:
    """Canonical hash of each block number (None past the head)."""
    results = rpc_batch(chain, [("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    return {n: (None if r is None else r["hash"]) for n, r in zip(numbers, results)}


# -- the indexer ----------------------------------------------------------------------------------
Sink = Callable[[Connection, list[DecodedLog]], None]
Rollback = Callable[[Connection, int], None]


@dataclass(frozen=True)
class Reorg:
    """A detected reorganisation: everything from ``first_invalid_block`` on was rolled back."""

    first_invalid_block: int
    previous_cursor: int


@dataclass(frozen=True)
class SyncResult:
    stream: str
    from_block: int
    to_block: int  # last block indexed (from_block - 1 when nothing was new)
    logs: int
    requests: int
    seconds: float
    reorg: Reorg | None


@dataclass
class LogIndexer:
    """Indexes the logs of ``addresses`` matching ``layouts`` into a sink, under cursor ``stream``."""

    chain: Chain
    store: Store
    stream: str
    addresses: Sequence[str]
    layouts: dict[str, EventLayout]
    start_block: int = 0
    chunk_blocks: int = 2_000
    chunks_per_request: int = 4
    confirmations: int = 0
    verify_window: int = 128  # stored blocks within this distance of the cursor are re-checked each sync

    # -- cursor ----------------------------------------------------------------------------------
    def cursor(self, conn: Connection | None = None) -> int:
        """The last indexed block (``start_block - 1`` before the first sync)."""
        if conn is None:
            with self.store.connect() as c:
                return self.cursor(c)
        row = conn.execute(
            sa.select(log_cursors.c.next_block, log_cursors.c.chain_id).where(log_cursors.c.stream == self.stream)
        ).first()
        if row is None:
            return self.start_block - 1
        if row.chain_id != self.chain.chain_id:
            raise ChainError(
                f"log stream {self.stream!r} was indexed on chain {row.chain_id}, not {self.chain.chain_id}"
            )
        return int(row.next_block) - 1

    def _set_cursor(self, conn: Connection, last_block: int) -> None:
        updated = conn.execute(
            log_cursors.update()
            .where(log_cursors.c.stream == self.stream)
            .values(next_block=last_block + 1, updated_at=utcnow())
        ).rowcount
        if not updated:
            conn.execute(
                log_cursors.insert().values(
                    stream=self.stream, chain_id=self.chain.chain_id, next_block=last_block + 1, updated_at=utcnow()
                )
            )

    # -- reorgs ----------------------------------------------------------------------------------
    def _stored(self, conn: Connection, below: int | None, limit: int) -> list[tuple[int, str]]:
        query = sa.select(log_blocks.c.block_number, log_blocks.c.block_hash).where(log_blocks.c.stream == self.stream)
        if below is not None:
            query = query.where(log_blocks.c.block_number < below)
        query = query.order_by(log_blocks.c.block_number.desc()).limit(limit)
        return [(int(n), h) for n, h in conn.execute(query)]

    def check_reorg(self, rollback: Rollback) -> Reorg | None:
        """Compare stored block hashes with the chain; roll back above the fork point if they differ."""
        with self.store.connect() as conn:
            cursor = self.cursor(conn)
            recent = [
                (n, h) for n, h in self._stored(conn, None, self.verify_window * 4) if n >= cursor - self.verify_window
            ]
        if not recent:
            return None
        canonical = _block_hashes(self.chain, [n for n, _ in recent])
        mismatched = [n for n, h in recent if canonical[n] != h]
        if not mismatched:
            return None
        lowest_bad = min(mismatched)
        fork = self._highest_matching_below(lowest_bad)
        first_invalid = (fork + 1) if fork is not None else self.start_block
        with self.store.begin() as conn:
            conn.execute(
                log_blocks.delete().where(
                    log_blocks.c.stream == self.stream, log_blocks.c.block_number >= first_invalid
                )
            )
            rollback(conn, first_invalid)
            self._set_cursor(conn, first_invalid - 1)
        return Reorg(first_invalid_block=first_invalid, previous_cursor=cursor)

    def _highest_matching_below(self, block: int) -> int | None:
        """Walk stored blocks downwards (a page per request) to the highest one still canonical."""
        below = block
        while True:
            with self.store.connect() as conn:
                page = self._stored(conn, below, 256)
            if not page:
                return None
            canonical = _block_hashes(self.chain, [n for n, _ in page])
            for number, stored_hash in page:  # descending
                if canonical[number] == stored_hash:
                    return number
            below = page[-1][0]

    # -- sync ------------------------------------------------------------------------------------
    def head(self) -> int:
        return int(self.chain.rpc("eth_blockNumber"), 16) - self.confirmations

    def pending(self) -> int:
        """Blocks a sync would scan now (before any reorg rollback)."""
        return max(0, self.head() - self.cursor())

    def sync(
        self, sink: Sink, rollback: Rollback, *, to_block: int | None = None, progress: Progress | None = None
    ) -> SyncResult:
        """Index everything new up to ``to_block`` (default: head − confirmations); returns what happened.
        ``progress(blocks scanned, blocks to scan)`` is called before the first batch and after each one."""
        started = time.perf_counter()
        reorg = self.check_reorg(rollback)
        head = self.head()
        target = head if to_block is None else min(to_block, head)
        first = self.cursor() + 1
        start, logs, requests = first, 0, 0
        total = max(0, target - first + 1)
        if progress is not None:
            progress(0, total)
        addresses = [a.lower() for a in self.addresses]
        topics = [sorted(self.layouts)]
        while start <= target:
            ranges = []
            for _ in range(self.chunks_per_request):
                if start > target:
                    break
                end = min(start + self.chunk_blocks - 1, target)
                ranges.append((start, end))
                start = end + 1
            calls: list[tuple[str, list[Any]]] = [
                ("eth_getLogs", [{"fromBlock": hex(a), "toBlock": hex(b), "address": addresses, "topics": topics}])
                for a, b in ranges
            ]
            calls.append(("eth_getBlockByNumber", [hex(ranges[-1][1]), False]))
            results = rpc_batch(self.chain, calls)
            requests += 1
            end_header = results[-1]
            if end_header is None:
                raise ChainError(f"block {ranges[-1][1]} disappeared while indexing {self.stream}; sync again")
            raw = [log for chunk in results[:-1] for log in chunk]
            decoded = decode_logs(raw, self.layouts)
            blocks = {log.block_number: log.block_hash for log in decoded}
            last = ranges[-1][1]
            if blocks.get(last, end_header["hash"]) != end_header["hash"]:
                raise ChainError(f"the chain reorganised while indexing {self.stream} (block {last}); sync again")
            blocks[last] = end_header["hash"]
            with self.store.begin() as conn:
                sink(conn, decoded)
                conn.execute(
                    log_blocks.insert(),
                    [{"stream": self.stream, "block_number": n, "block_hash": h} for n, h in blocks.items()],
                )
                self._set_cursor(conn, last)
            logs += len(decoded)
            if progress is not None:
                progress(last - first + 1, total)
        return SyncResult(
            stream=self.stream,
            from_block=first,
            to_block=max(first - 1, min(target, start - 1)),
            logs=logs,
            requests=requests,
            seconds=round(time.perf_counter() - started, 4),
            reorg=reorg,
        )

    def reset(self, rollback: Rollback) -> None:
        """Forget everything indexed for this stream (the sink's rows too)."""
        with self.store.begin() as conn:
            conn.execute(log_blocks.delete().where(log_blocks.c.stream == self.stream))
            conn.execute(log_cursors.delete().where(log_cursors.c.stream == self.stream))
            rollback(conn, self.start_block)


def _json_rpc(chain: Chain) -> JSONBaseProvider:
    """The chain's provider, which must speak JSON-RPC for a batch."""
    from web3.providers import JSONBaseProvider

    provider = chain.w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise ChainError(f"batched calls need a JSON-RPC provider, not {type(provider).__name__}")
    return provider
