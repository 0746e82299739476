"""The generic log indexer on a real chain: slicing decoder vs web3, chunking, resume, atomicity, reorgs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from sqlalchemy.engine import Connection

from custody.chain.logs import EventLayout, LogIndexer, decode_logs, layouts_from_abi
from custody.contracts import load_artifact
from custody.contracts.deploy import deploy_plain
from custody.signers.local import anvil_address

MINT = function_signature_to_4byte_selector("mint(address,uint256)")
meta = sa.MetaData()
transfers = sa.Table(
    "test_transfers",
    meta,
    sa.Column("stream", sa.String(100), primary_key=True),
    sa.Column("block_number", sa.BigInteger, primary_key=True),
    sa.Column("log_index", sa.Integer, primary_key=True),
    sa.Column("block_hash", sa.String(66), nullable=False),
    sa.Column("to", sa.String(42), nullable=False),
    sa.Column("value", sa.String(78), nullable=False),
)


@pytest.fixture
def token(session) -> str:
    """A fresh TestERC20 per test (plain CREATE), so its logs start in this test."""
    return deploy_plain(
        session.chain, session.sender, "TestERC20", constructor_types=["string", "string", "uint8"],
        constructor_args=["Log Test", "LOG", 6],
    ).address  # fmt: skip


def mint(session, token: str, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        data = MINT + encode(["address", "uint256"], [anvil_address(i % 10), i])
        session.send(to=token, data=data, what="mint")


def make_indexer(session, token: str, stream: str = "t", **kw) -> LogIndexer:
    meta.create_all(session.store.engine)
    return LogIndexer(
        chain=session.chain, store=session.store, stream=stream, addresses=[token],
        layouts=layouts_from_abi(load_artifact("TestERC20").abi, ["Transfer"]), **kw,
    )  # fmt: skip


def sink_for(stream: str):
    def sink(conn: Connection, logs) -> None:
        if logs:
            conn.execute(transfers.insert(), [
                {"stream": stream, "block_number": x.block_number, "log_index": x.log_index,
                 "block_hash": x.block_hash, "to": x.values[1], "value": str(x.values[2])} for x in logs
            ])  # fmt: skip

    def rollback(conn: Connection, first_invalid: int) -> None:
        conn.execute(transfers.delete().where(transfers.c.stream == stream, transfers.c.block_number >= first_invalid))

    return sink, rollback


def rows(session, stream: str) -> list[tuple]:
    with session.store.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(transfers.c.block_number, transfers.c.log_index, transfers.c.block_hash, transfers.c.to,
                          transfers.c.value).where(transfers.c.stream == stream).order_by(transfers.c.block_number)
            )
        ]  # fmt: skip


def chain_transfers(session, token: str) -> list[tuple]:
    """The truth, through web3's own event machinery."""
    contract = session.contract("TestERC20", token)
    events = contract.events.Transfer().get_logs(from_block=0, to_block="latest")
    return [
        (e["blockNumber"], e["logIndex"], "0x" + bytes(e["blockHash"]).hex(), e["args"]["to"].lower(),
         str(e["args"]["value"])) for e in events
    ]  # fmt: skip


def test_layout_decodes_every_abi_shape_like_eth_abi():
    item = {
        "type": "event", "name": "Mixed", "anonymous": False,
        "inputs": [
            {"name": "who", "type": "address", "indexed": True}, {"name": "delta", "type": "int64", "indexed": True},
            {"name": "tag", "type": "string", "indexed": True}, {"name": "ok", "type": "bool", "indexed": False},
            {"name": "code", "type": "bytes4", "indexed": False}, {"name": "amount", "type": "uint256", "indexed": False},
        ],
    }  # fmt: skip
    layout = EventLayout.from_abi(item)
    assert layout.signature == "Mixed(address,int64,string,bool,bytes4,uint256)"
    who = "0x" + "00" * 12 + "ab" * 20
    delta = "0x" + (2**256 - 5).to_bytes(32, "big").hex()
    tag = "0x" + "cd" * 32
    data = "0x" + encode(["bool", "bytes4", "uint256"], [True, b"\x01\x02\x03\x04", 2**255]).hex()
    assert layout.decode([layout.topic0, who, delta, tag], data) == (
        "0x" + "ab" * 20, -5, bytes.fromhex("cd" * 32), True, b"\x01\x02\x03\x04", 2**255,
    )  # fmt: skip
    dynamic = EventLayout.from_abi({**item, "inputs": [*item["inputs"][:3], {"name": "note", "type": "string"}]})
    note = "0x" + encode(["string"], ["héllo"]).hex()
    assert dynamic.decode([layout.topic0, who, delta, tag], note)[3] == "héllo"


def test_index_matches_web3_with_any_chunking(session, token):
    mint(session, token, 12)
    expected = chain_transfers(session, token)
    assert len(expected) == 12
    for stream, chunk, per_request in (("big", 10_000, 4), ("tiny", 1, 3), ("odd", 5, 2)):
        indexer = make_indexer(session, token, stream, chunk_blocks=chunk, chunks_per_request=per_request)
        result = indexer.sync(*sink_for(stream))
        assert result.logs == 12 and result.reorg is None
        assert rows(session, stream) == expected, stream


def test_resumes_from_the_stored_cursor(session, token):
    mint(session, token, 4)
    first = make_indexer(session, token).sync(*sink_for("t"))
    again = make_indexer(session, token).sync(*sink_for("t"))  # a new process would see the same tables
    assert again.logs == 0 and again.from_block == first.to_block + 1
    mint(session, token, 3, start=50)
    third = make_indexer(session, token).sync(*sink_for("t"))
    assert third.logs == 3 and third.from_block == first.to_block + 1
    assert rows(session, "t") == chain_transfers(session, token)


def test_a_failing_sink_commits_nothing(session, token):
    mint(session, token, 3)
    indexer = make_indexer(session, token)
    sink, rollback = sink_for("t")

    def broken(conn, logs):
        sink(conn, logs)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        indexer.sync(broken, rollback)
    assert rows(session, "t") == [] and indexer.cursor() == indexer.start_block - 1
    assert indexer.sync(sink, rollback).logs == 3


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_reorg_rolls_back_to_the_fork_and_reindexes(fresh_session, depth):
    session = fresh_session  # anvil_reorg needs a chain without evm_revert history (see conftest)
    token = deploy_plain(
        session.chain, session.sender, "TestERC20", constructor_types=["string", "string", "uint8"],
        constructor_args=["Log Test", "LOG", 6],
    ).address  # fmt: skip
    mint(session, token, 6)
    indexer = make_indexer(session, token)
    indexer.sync(*sink_for("t"))
    before = rows(session, "t")
    head = int(session.chain.rpc("eth_blockNumber"), 16)
    # replace the last `depth` blocks: their mints vanish, one different mint lands in the first new block
    # sent by an account with no transactions in the replaced blocks, so its nonce is the same on both forks;
    # explicit gas: anvil would otherwise estimate it against the abandoned fork
    replacement = {"from": anvil_address(8), "to": token, "gas": hex(200_000),  # no estimate on the old fork
                   "data": "0x" + (MINT + encode(["address", "uint256"], [anvil_address(9), 999])).hex()}  # fmt: skip
    session.chain.rpc("anvil_reorg", [depth, [[replacement, 0]]])
    result = indexer.sync(*sink_for("t"))
    assert result.reorg is not None and result.reorg.first_invalid_block == head - depth + 1
    after = rows(session, "t")
    assert after == chain_transfers(session, token)
    assert [r for r in after if r[0] <= head - depth] == [r for r in before if r[0] <= head - depth]
    assert any(r[4] == "999" for r in after) and len(after) == len(before) - depth + 1


def test_rollback_then_new_blocks_is_detected(session, token):
    mint(session, token, 4)
    indexer = make_indexer(session, token)
    indexer.sync(*sink_for("t"))
    session.chain.rpc("anvil_rollback", [2])
    assert indexer.sync(*sink_for("t")).reorg is not None  # chain shorter than the cursor
    mint(session, token, 1, start=77)
    indexer.sync(*sink_for("t"))
    assert rows(session, "t") == chain_transfers(session, token)
    assert [r[4] for r in rows(session, "t")] == ["1", "2", "77"]


def test_decode_logs_skips_foreign_topics(session, token):
    mint(session, token, 2)
    raw = session.chain.rpc("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": token}])
    raw.append({**raw[0], "topics": ["0x" + "11" * 32]})
    decoded = decode_logs(raw, layouts_from_abi(load_artifact("TestERC20").abi, ["Transfer"]))
    assert len(decoded) == 2 and decoded[0].address == token.lower()
    assert to_checksum_address(decoded[0].values[1]) == anvil_address(1)
