"""Running a drill: pick the chain (a snapshot of the local chain, the live local chain, or a fork of
a given RPC), put the fault proxy in front of it, set up the vaults, run every step, judge it, restore.

* **snapshot** (default): ``evm_snapshot`` before the setup, ``evm_revert`` afterwards; the drill works
  in a scratch workspace (a temporary database holding copies of this chain's deployment and vault
  records), so neither the chain nor the workspace keeps anything.
* **live** (``--live``): the same on the workspace's own chain and database, nothing restored.
* **fork** (``--fork-url URL``): a throw-away Anvil forks ``URL`` (at its latest block, or
  ``fork_block``); the remote chain is only read.

Every step goes through the loopback :class:`~custody.drills.faultproxy.FaultProxy`, so ``rpc_fault``
steps can break the RPC and the report can count what reached the node.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from custody.binding import check_binding
from custody.chain.anvil import AnvilProcess, rpc_call
from custody.chain.connection import Chain, connect, next_utc_slot
from custody.chain.rpc import RpcPolicy
from custody.drills import hooks
from custody.drills.actions_vault import create, fund_vault
from custody.drills.catalogue import registry
from custody.drills.context import DrillContext
from custody.drills.expect import Diff, Observed, baselines, evaluate
from custody.drills.faultproxy import FaultProxy
from custody.drills.model import Playbook, Step, substitute
from custody.drills.report import write_report
from custody.exceptions import AnvilError, CustodyError, DrillError
from custody.session import Session
from custody.signers.base import Signer
from custody.signers.registry import SignerContext
from custody.store import deployments, vaults
from custody.vault.service import get_vault
from custody.workspace import Workspace

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DrillOptions:
    vault: str | None = None  # an existing vault replaces the playbook's subject vault
    live: bool = False
    fork_url: str | None = None
    fork_block: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    out: Path | None = None
    sender: str | None = None
    attester: str | None = None  # attester key for the drill badge (the operator's --attester)
    signers: Mapping[str, Signer] = field(default_factory=dict)  # URI -> an already opened signer (pilot HSM)

    @property
    def mode(self) -> str:
        return "fork" if self.fork_url else "live" if self.live else "snapshot"


@dataclass(frozen=True)
class DrillReport:
    data: dict[str, Any]
    json_path: Path
    html_path: Path

    @property
    def passed(self) -> bool:
        return bool(self.data["verdict"] == "passed")

    @property
    def failures(self) -> list[dict[str, Any]]:
        failures: list[dict[str, Any]] = self.data["failures"]
        return failures


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@contextmanager
def scratch_workspace(source: Workspace, chain_id: int) -> Iterator[Workspace]:
    """A temporary SQLite workspace holding copies of ``source``'s deployment and vault records."""
    with tempfile.TemporaryDirectory(prefix="custody-drill-") as tmp:
        scratch = Workspace(tmp, db_url=f"sqlite:///{Path(tmp) / 'custody.db'}").ensure()
        try:
            with source.store.connect() as src, scratch.store.begin() as dst:
                for table in (deployments, vaults):
                    rows = [
                        dict(r) for r in src.execute(sa.select(table).where(table.c.chain_id == chain_id)).mappings()
                    ]
                    if rows:
                        dst.execute(table.insert(), rows)
            yield scratch
        finally:
            scratch.close()


def run_drill(
    workspace: Workspace,
    playbook: Playbook,
    options: DrillOptions = DrillOptions(),
    *,
    chain: Chain | None = None,
    progress: Progress = lambda _m: None,
) -> DrillReport:
    """Run ``playbook``; returns the report (also written as JSON + HTML). Never leaves the chain changed
    except in live mode. Raises DrillError when the drill cannot run at all (chain, setup)."""

    playbook = playbook.with_params(options.params) if options.params else playbook
    if options.live and options.fork_url:
        raise DrillError("--live and --fork-url exclude each other: a fork is thrown away after the drill")
    tag = secrets.token_hex(3)
    started, t0 = _now(), time.perf_counter()
    out = options.out or workspace.home / "drills" / f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{playbook.name}-{tag}"
    with ExitStack() as stack:
        target, fork_info = _target(stack, options, chain)
        if options.fork_url:  # the drill copies this workspace's records: only onto a fork of their own chain
            remote = connect(options.fork_url, expected_chain_id=target.chain_id)
            check_binding(remote, workspace.store, where=str(workspace.home))
        proxy = stack.enter_context(FaultProxy(target.url))
        policy = replace(RpcPolicy.from_env(), **playbook.setup.rpc) if playbook.setup.rpc else RpcPolicy.from_env()
        drill_chain = connect(proxy.url, expected_chain_id=target.chain_id, policy=policy)
        ws = workspace if options.live else stack.enter_context(scratch_workspace(workspace, target.chain_id))
        signer_context = SignerContext(keystore_dir=workspace.keystore_dir)
        session = Session(workspace=ws, chain=drill_chain, sender_uri=options.sender, signer_context=signer_context)
        stack.callback(_close_signers, session)
        block_start = int(target.call(lambda: target.w3.eth.block_number))
        snapshot = target.snapshot() if options.mode == "snapshot" else None
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="custody-drill-work-")))
        ctx = DrillContext(
            session=session,
            workdir=workdir,
            playbook_dir=playbook.path.parent,
            proxy=proxy,
            overrides=options.signers,
            run_tag=tag,
        )
        restored = False
        try:
            vault_rows = _setup(ctx, playbook, options, progress)
            steps = _steps(ctx, playbook, progress)
            block_end = int(target.call(lambda: target.w3.eth.block_number))
            rpc = _rpc_summary(proxy, policy)
            operator = session.sender.address
        finally:
            if snapshot is not None:
                target.revert(snapshot)
                restored = True
        chain_info = {
            "chain_id": target.chain_id,
            "client": target.client,
            "url": target.url,
            **fork_info,
            "block_start": block_start,
            "block_end": block_end,
            "restored": restored,
        }
    data = _report(
        playbook, options, tag, started, time.perf_counter() - t0, chain_info, operator, vault_rows, steps, rpc
    )
    record_session = None
    if options.mode != "fork" and chain is not None:
        record_session = Session(
            workspace=workspace, chain=chain, sender_uri=options.sender, attester_uri=options.attester
        )
    data["records"] = hooks.record_drill(workspace, record_session, data)
    json_path, html_path = write_report(data, out)
    return DrillReport(data, json_path, html_path)


def _close_signers(session: Session) -> None:
    for signer in session._opened:
        close = getattr(signer, "close", None)
        if close is not None:
            close()
    session._opened.clear()


def _target(stack: ExitStack, options: DrillOptions, chain: Chain | None) -> tuple[Chain, dict[str, Any]]:
    if options.fork_url:
        try:
            remote_id = int(rpc_call(options.fork_url, "eth_chainId", timeout=10.0), 16)
        except (OSError, ValueError) as exc:
            raise DrillError(f"cannot fork {options.fork_url}: it does not answer eth_chainId ({exc})") from exc
        try:
            anvil = stack.enter_context(
                AnvilProcess(fork_url=options.fork_url, fork_block=options.fork_block, chain_id=remote_id)
            )
        except AnvilError as exc:
            raise DrillError(f"cannot start an Anvil fork of {options.fork_url}: {exc.message}") from exc
        forked = connect(anvil.url, expected_chain_id=remote_id)
        fork_block = options.fork_block
        if fork_block is None:
            fork_block = int(forked.call(lambda: forked.w3.eth.block_number))
        return forked, {"fork_url": options.fork_url, "fork_block": fork_block}
    if chain is None:
        raise DrillError("no chain to run the drill on: start one (`custody chain up`) or pass --fork-url URL")
    if not chain.is_anvil:
        raise DrillError(
            f"drills snapshot and restore a local Anvil; {chain.url} is {chain.client or 'not Anvil'}",
            hint="rehearse against a fork of it instead: --fork-url URL",
        )
    return chain, {"fork_url": None, "fork_block": None}


def _setup(ctx: DrillContext, playbook: Playbook, options: DrillOptions, progress: Progress) -> list[dict[str, Any]]:

    session, setup = ctx.session, playbook.setup
    try:
        if setup.clock is not None:
            weekday, hour = setup.clock
            now = session.chain.latest_timestamp()
            session.chain.set_next_timestamp(next_utc_slot(now, weekday=weekday, hour=hour, min_ahead=1))
            session.chain.mine()
        session.infrastructure()
        rows: list[dict[str, Any]] = []
        subject = setup.subject
        for spec in setup.vaults:
            if options.vault is not None and spec is subject:
                record = get_vault(session, options.vault)
                ctx.vaults[spec.alias] = record.id
                rows.append(
                    {
                        "alias": spec.alias,
                        "name": record.name,
                        "safe": record.safe,
                        "timelock": record.timelock,
                        "exit_module": record.exit_module,
                        "created": False,
                        "funded": [],
                    }
                )
                continue
            progress(f"setup: vault {spec.alias} from {spec.template.name}")
            facts = create(ctx, spec.alias, spec.template)
            funded = [fund_vault(ctx, spec.alias, asset, amount) for asset, amount in spec.fund]
            rows.append(
                {
                    "alias": spec.alias,
                    "name": facts["vault"],
                    "safe": facts["safe"],
                    "timelock": facts["timelock"],
                    "exit_module": facts["exit_module"],
                    "created": True,
                    "funded": [{"asset": f["asset"], "amount": f["amount"]} for f in funded],
                }
            )
        if options.vault is not None and subject is None:
            raise DrillError(f"playbook {playbook.name} sets up no vault that --vault could replace")
        return rows
    except CustodyError as exc:
        raise DrillError(f"drill {playbook.name}: setup failed: {exc.message}", hint=exc.hint) from exc


@dataclass(frozen=True)
class StepResult:
    step: Step
    actors: tuple[dict[str, str], ...]
    args: Mapping[str, Any]
    started_at: str | None
    observed: Observed | None
    diffs: tuple[Diff, ...]
    rpc: Mapping[str, int]
    expected: Mapping[str, Any]  # the step's expectation with the playbook's parameters filled in

    @property
    def verdict(self) -> str:
        return "skipped" if self.observed is None else "failed" if self.diffs else "passed"

    def as_dict(self) -> dict[str, Any]:
        s = self.step
        return {
            "index": s.index + 1,
            "name": s.name,
            "action": s.action,
            "line": s.line,
            "note": s.note,
            "actor": list(self.actors),
            "args": {k: list(v) if isinstance(v, tuple) else v for k, v in self.args.items()},
            "started_at": self.started_at,
            "seconds": None if self.observed is None else round(self.observed.seconds, 3),
            "expected": dict(self.expected),
            "observed": None if self.observed is None else self.observed.as_dict(),
            "verdict": self.verdict,
            "diff": [d.as_dict() for d in self.diffs],
            "rpc": dict(self.rpc),
        }


def _actors(
    ctx: DrillContext, step: Step, params: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    uris = substitute(step.actor, params) if step.actor else ()
    uris = uris if isinstance(uris, tuple) else (uris,)
    records: list[dict[str, Any]] = []
    for uri in uris:
        try:
            records.append({"uri": uri, "address": ctx.signer_address(uri)})
        except CustodyError as exc:
            records.append({"uri": uri, "address": None, "problem": exc.message})
    if not uris:
        sender = ctx.session.sender
        records.append({"uri": sender.uri, "address": sender.address, "role": "operator (pays gas)"})
    return uris, tuple(records)


def resolve_params(value: Any, params: Mapping[str, Any]) -> Any:
    """``value`` (the JSON form of an expectation) with every ``{param}`` replaced by its value."""
    if isinstance(value, str):
        found = substitute(value, params)
        return list(found) if isinstance(found, tuple) else found
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(substitute(tuple(value), params))
    if isinstance(value, list):
        return [resolve_params(v, params) for v in value]
    if isinstance(value, dict):
        return {k: resolve_params(v, params) for k, v in value.items()}
    return value


def _steps(ctx: DrillContext, playbook: Playbook, progress: Progress) -> list[StepResult]:
    actions = registry()
    results: list[StepResult] = []
    failed = False
    for step in playbook.steps:
        expected = resolve_params(step.expect.as_dict(), playbook.params)
        if failed and not playbook.continue_on_failure:
            results.append(StepResult(step, (), {}, None, None, (), {}, expected))
            continue
        progress(f"step {step.index + 1}/{len(playbook.steps)}: {step.name}")
        started = _now()
        before_rpc = ctx.proxy.counters() if ctx.proxy else {}
        t0 = time.perf_counter()
        args: dict[str, Any] = {}
        actors: tuple[dict[str, Any], ...] = ()
        before: dict[int, int] = {}
        try:
            args = {k: substitute(v, playbook.params) for k, v in step.args.items()}
            uris, actors = _actors(ctx, step, playbook.params)
            before = baselines(ctx, step.expect, playbook.params)
            t0 = time.perf_counter()
            data = actions[step.action].run(ctx, args, uris)
            observed = Observed(ok=True, seconds=time.perf_counter() - t0, data=data)
        except Exception as exc:  # an action that crashes is a failed step, kept in the report (not a lost drill)
            observed = Observed.failure(exc, time.perf_counter() - t0)
        after_rpc = ctx.proxy.counters() if ctx.proxy else {}
        try:
            diffs = evaluate(ctx, step.expect, observed, before, playbook.params)
        except CustodyError as exc:
            diffs = [Diff("expectation", "checkable", f"could not be checked: {exc.message}")]
        rpc = {k: after_rpc[k] - before_rpc.get(k, 0) for k in after_rpc}
        result = StepResult(step, actors, args, started, observed, tuple(diffs), rpc, expected)
        results.append(result)
        progress(f"  {'✓' if not diffs else '✗'} {observed.summary()}" + "".join(f"\n    {d}" for d in diffs))
        failed = failed or bool(diffs)
    return results


def _rpc_summary(proxy: FaultProxy, policy: RpcPolicy) -> dict[str, Any]:
    duplicates = proxy.duplicate_nonces()
    return {
        "calls": sum(proxy.calls.values()),
        "faults_injected": len(proxy.injected),
        "broadcasts": len(proxy.broadcasts),
        "distinct_transactions": len({b.tx_hash for b in proxy.broadcasts}),
        "duplicate_nonce_broadcasts": duplicates,
        "policy": {
            "timeout_s": policy.timeout,
            "retries": policy.retries,
            "backoff_s": policy.backoff,
            "receipt_timeout_s": policy.receipt_timeout,
        },
    }


def _report(
    playbook: Playbook,
    options: DrillOptions,
    tag: str,
    started: str,
    seconds: float,
    chain: dict[str, Any],
    operator: str,
    vault_rows: list[dict[str, Any]],
    steps: list[StepResult],
    rpc: dict[str, Any],
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool = version("custody")
    except PackageNotFoundError:
        tool = "unknown"
    step_dicts = [s.as_dict() for s in steps]
    counts = {v: sum(1 for s in steps if s.verdict == v) for v in ("passed", "failed", "skipped")}
    failures = [
        {"step": s["index"], "name": s["name"], "line": s["line"], "diff": s["diff"]}
        for s in step_dicts
        if s["verdict"] == "failed"
    ]
    return {
        "report_version": 1,
        "drill": {
            "name": playbook.name,
            "title": playbook.title,
            "description": playbook.description,
            "playbook": str(playbook.path),
            "playbook_sha256": playbook.sha256,
            "controls": list(playbook.controls),
        },
        "verdict": "passed" if not failures and counts["skipped"] == 0 else "failed",
        "run": {
            "id": tag,
            "mode": options.mode,
            "started_at": started,
            "finished_at": _now(),
            "seconds": round(seconds, 3),
            "operator": operator,
            "subject_vault": options.vault,
            "tool": f"custody {tool}",
            "chain": chain,
        },
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in playbook.params.items()},
        "vaults": vault_rows,
        "steps": step_dicts,
        "summary": {"steps": len(steps), **counts},
        "failures": failures,
        "rpc": rpc,
    }
