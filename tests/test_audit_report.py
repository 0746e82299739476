"""The audit HTML report speaks to people (docs/audit-report.md), shown two ways.

Chain-free: the page built from real ledgers (a verified one and a tampered one) says "all entries verified"
or names the first bad sequence, never "None"; amounts are exact with their symbols; Unix times become ISO
8601; chart axes are integers from 0; headings are unique; entries' strings are escaped and secrets redacted.

In a real browser (Debian ``chromium``, headless; scripts/bootstrap installs it): a vault's real flows on
Anvil exported through ``custody audit export --format html``, rendered to a 1280×2000 screenshot that must
not be blank, and to a DOM (``--dump-dom``) in which the rendered text shows the human amounts, ISO times and
no base units, and a probe script measures that nothing overflows the page horizontally, at 1280 px and in
a narrow 500 px window.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from eth_abi import encode
from PIL import Image

from custody.audit import service as audit_service
from custody.audit.keys import Ed25519LedgerKey
from custody.audit.record import ledger_for
from custody.audit.report import CSP, AssetLabel, render_html, ticks
from custody.audit.schema import audit_entries
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.harness.synthetic import fill
from custody.signers.local import anvil_signer
from custody.vault import proposals, service
from custody.workspace import Workspace
from tests.conftest import POLICIES

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
MINT = bytes.fromhex("40c10f19")  # mint(address,uint256)
TOKEN = "0x6416d50c3136f549278cd5dbb34b728069975495"
ISO = re.compile(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


class _Page(HTMLParser):
    """Headings, SVG tick/count labels, bar widths and text of a page (stdlib parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.ticks: list[str] = []
        self.counts: list[str] = []
        self.widths: list[float] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "rect" and "width" in a:
            self.widths.append(float(a["width"]))
        self._open.append((tag, a.get("class") or ""))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        self.text.append(data)
        tag, cls = self._open[-1] if self._open else ("", "")
        if tag in ("h1", "h2", "h3"):
            self.headings.append(data.strip())
        elif tag == "text" and cls == "tick":
            self.ticks.append(data.strip())
        elif tag == "text" and cls == "count":
            self.counts.append(data.strip())


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def ledger_workspace(tmp_path: Path, count: int = 10) -> Workspace:
    workspace = Workspace(tmp_path / "ws").ensure()
    ledger = ledger_for(workspace.store)
    fill(ledger, count, key=Ed25519LedgerKey.load_or_create(tmp_path / "key"), head_every=5)
    return workspace


# -- chain-free ----------------------------------------------------------------------------------------
def test_axis_ticks_are_integers_from_zero_covering_the_maximum():
    for maximum in [*range(0, 1200), 10**6 - 1, 10**6, 10**6 + 1, 2**40]:
        axis = ticks(maximum)
        assert axis[0] == 0 and axis[-1] >= maximum and 2 <= len(axis) <= 6
        assert all(isinstance(t, int) for t in axis) and axis == sorted(set(axis))
        step = axis[1]
        assert all(b - a == step for a, b in itertools.pairwise(axis))
        assert axis[-1] - step < max(maximum, 1)  # no empty interval at the top


def test_a_verified_ledger_says_so_in_human_terms(tmp_path):
    workspace = ledger_workspace(tmp_path)
    try:
        rows = audit_service.entries(ledger_for(workspace.store))
        verdict = audit_service.verify(store=workspace.store).as_dict()
        assert verdict["first_bad_sequence"] is None
        page = render_html(rows, verdict)
    finally:
        workspace.close()
    dom = parse(page)
    text = " ".join(dom.text)
    assert "All 10 entries verified" in text and "offline (not checked against a chain)" in text
    assert "first bad sequence" not in text.lower() and not re.search(r"\bNone\b", text)
    # the head's Unix time becomes ISO 8601 UTC
    head = verdict["integrity"]["latest_head"]
    assert str(head["time"]) not in page and "signed 2026-01-06T10:00:10Z" in text
    # synthetic executions move 0.003 ETH / 0.008 ETH: human amounts, exact, never base units
    assert "send 0.003 ETH to 0x2323232323232323232323232323232323232323" in text
    assert "3000000000000000" not in page and "0.008 ETH" in text
    assert len(dom.headings) == len(set(dom.headings)), dom.headings
    assert all(t.isdigit() for t in dom.ticks) and dom.ticks[0] == "0"
    assert all(c.isdigit() for c in dom.counts) and all(w >= 0 for w in dom.widths)
    assert "script" not in dom.tags and f'content="{CSP}"' in page
    assert "http://" not in page and "https://" not in page  # self-contained: opens offline


def test_a_tampered_ledger_names_the_first_bad_sequence(tmp_path):
    workspace = ledger_workspace(tmp_path)
    try:
        with workspace.store.begin() as conn:
            blob = conn.execute(sa.select(audit_entries.c.entry).where(audit_entries.c.seq == 3)).scalar_one()
            forged = blob.replace(b'"value":"3000000000000000"', b'"value":"9000000000000000"')
            assert forged != blob
            conn.execute(audit_entries.update().where(audit_entries.c.seq == 3).values(entry=forged))
        verdict = audit_service.verify(store=workspace.store).as_dict()
        page = render_html(audit_service.entries(ledger_for(workspace.store)), verdict)
    finally:
        workspace.close()
    text = " ".join(parse(page).text)
    bad = verdict["first_bad_sequence"]
    assert verdict["verdict"] == "tampered" and isinstance(bad, int)
    assert "Verdict: tampered" in text and f"first bad sequence: {bad}" in text and "entries verified" not in text
    assert "entry 3 does not hash to its recorded leaf hash (altered)" in text  # each problem listed
    assert "Problems" in parse(page).headings and not re.search(r"\bNone\b", text)


def entry(seq: int, kind: str, payload: dict, **fields) -> dict:
    return {"seq": seq, "kind": kind, "actor": fields.get("actor", "indexer"), "vault": fields.get("vault", "hot-ops"),
            "chain_id": 31337, "time": fields.get("time", "2026-12-01T10:00:00Z"), "refs": fields.get("refs", {}),
            "payload": payload, "prev": "00" * 32, "v": 1}  # fmt: skip


def transfer_data(to: str, amount: int) -> str:
    return "0xa9059cbb" + encode(["address", "uint256"], [to, amount]).hex()


def test_amounts_symbols_escaping_and_redaction():
    big = 2**256 - 1
    entries = [
        entry(0, "deposit_observed", {"asset": "ETH", "amount": str(62_500_000_000_000_000_000), "from": PRIME}),
        entry(1, "deposit_observed", {"asset": TOKEN, "amount": str(big), "from": PRIME}),
        entry(
            2,
            "execution",
            {"to": TOKEN, "value": "0", "data": transfer_data(PRIME, 62_500_000), "success": True},
            time="2026-12-01T15:30:00Z",
        ),
        entry(
            3,
            "proposal_created",
            {"to": PRIME, "value": "1", "data": "0x", "description": HOSTILE, "passphrase": "hunter2-canary"},
            actor=HOSTILE,
        ),
        entry(4, "execution", {"to": "0x" + "77" * 20, "value": "0", "data": transfer_data(PRIME, 5), "success": True}),
        entry(5, "policy_change_scheduled", {"ready_at": 1_796_316_416, "description": "mail ops@example.org"}),
        entry(6, "exit_signed", {"custodian": None, "signers": [], "gas_used": None}),
        entry(7, "correction", {"reason": "reorg: the block that held this log was replaced"}, refs={"supersedes": 1}),
    ]
    verdict = {"verdict": "ok", "exit_code": 0, "first_bad_sequence": None, "root": "ab" * 32,
               "integrity": {"heads": 1, "latest_head": None, "problems": []}, "chain": None}  # fmt: skip
    tokens = {TOKEN.upper().replace("0X", "0x"): AssetLabel(HOSTILE, 6)}  # a token may name itself anything
    page = render_html(entries, verdict, tokens=tokens)
    dom = parse(page)
    text = " ".join(dom.text)
    assert "62.5 ETH" in text and "received 62.5 ETH from " + PRIME in text
    symbol = HOSTILE
    # 2**256 - 1 with 6 decimals, exact to the last digit (a float would round it)
    exact = str(big)[:-6] + "." + str(big)[-6:]
    assert f"{exact} {symbol}" in text and f"transfer 62.5 {symbol} to {PRIME}" in text
    assert "0.000000000000000001 ETH" in text  # 1 wei
    assert f"5 base units of unknown token 0x{'77' * 20}" in text  # no label: said so, not guessed
    assert "ready_at=2026-12-03T16:46:56Z" in text  # a Unix time in a payload, as ISO 8601
    assert "custodian=—" in text and not re.search(r"\bNone\b", text)  # nothing Python-shaped for people
    assert (
        "supersedes entry 1: reorg: the block that held this log was replaced" in text and "Corrections" in dom.headings
    )
    assert "script" not in dom.tags and "img" not in dom.tags and "<script" not in page  # escaped, not markup
    assert "hunter2-canary" not in page and "ops@example.org" not in page and "[redacted]" in text
    flows_chart = page.split("Movements per vault and asset", 1)[1].split("</svg>", 1)[0]
    assert "hot-ops / ETH" in flows_chart and "unknown token" in flows_chart
    assert all(t.isdigit() for t in parse("<svg>" + flows_chart).ticks)
    assert all(w >= 0 for w in dom.widths) and all(c.isdigit() for c in dom.counts)
    assert len(dom.headings) == len(set(dom.headings)) and "Per-vault flows" in dom.headings, dom.headings
    activity = page.split("Entries per period (UTC)", 1)[1].split("</svg>", 1)[0]
    # hour buckets from 10:00 to 15:00, the empty hours between kept as 0
    assert all(f"2026-12-01T{h}:00Z" in activity for h in range(10, 16)) and ">0</text>" in activity


# -- in a real browser -----------------------------------------------------------------------------------
def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("chromium is not installed: the report's browser test needs Debian's `chromium`; "
                    "run scripts/bootstrap as root (it installs it) or `apt-get install chromium`")  # fmt: skip
    return found


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


PROBE = """<script>
document.querySelectorAll('details').forEach(d => { d.open = true; });
const over = [];
document.querySelectorAll('td,th,dd,dt,p,h1,h2,code').forEach(el => {
  if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline')
    over.push(el.tagName + ': ' + el.textContent.slice(0, 80));
});
document.querySelectorAll('table,svg,dl,p').forEach(el => {
  if (el.getBoundingClientRect().right > window.innerWidth + 0.5) over.push('beyond the window: ' + el.tagName);
});
const probe = document.createElement('pre');
probe.id = 'probe';
probe.textContent = JSON.stringify({scrollWidth: document.documentElement.scrollWidth,
                                    innerWidth: window.innerWidth, overflowing: over});
document.body.appendChild(probe);
</script>"""


def probed(page: str) -> str:
    """The page with the measuring script (the report's own CSP forbids scripts, so it is lifted here)."""
    meta = f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
    assert meta in page
    return page.replace(meta, "").replace("</body>", PROBE + "</body>")


def measure(dom: str) -> dict:
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", dom, re.S)
    assert found, "the probe script did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))  # fmt: skip


def test_the_report_renders_for_people_in_a_real_browser(session, run_cli, tmp_path):
    chromium()  # fails first, naming scripts/bootstrap, when the browser is missing
    vault, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=vault.safe, value=62_500_000_000_000_000_000, what="ETH deposit")
    session.send(to=DEMO_TOKEN_ADDRESS, data=MINT + encode(["address", "uint256"], [vault.safe, 5_000 * 10**6]),
                 what="dUSD deposit")  # fmt: skip
    proposer = HOSTILE + "-" + "x" * 150  # attacker-chosen, unbreakable: must be escaped and wrapped
    for amount, token in (("1.25", None), ("62.5", DEMO_TOKEN_ADDRESS)):
        proposal = proposals.propose_transfer(
            session, vault.id, to=PRIME, amount=amount, token=token, proposer=proposer
        )
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
        proposals.execute(session, proposals.get_proposal(session, proposal.id))
    assert run_cli("audit", "index").exit_code == 0
    report = tmp_path / "report.html"
    done = run_cli("audit", "export", "--format", "html", "--out", str(report), "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "ok"
    head_time = json.loads(run_cli("audit", "verify", "--json").stdout)["integrity"]["latest_head"]["time"]
    page = report.read_text()
    # offline, the symbols and decimals come from the vault's policy template (the workspace's known tokens)
    offline = tmp_path / "offline.html"
    assert run_cli("audit", "export", "--format", "html", "--out", str(offline), "--no-chain").exit_code == 0
    offline_text = offline.read_text()
    assert "62.5 dUSD" in offline_text and "offline (not checked against a chain)" in offline_text

    # one browser run per width: the screenshot and the DOM of the report with the measuring probe
    shot, profile, measured = tmp_path / "report.png", tmp_path / "profile", tmp_path / "measured.html"
    measured.write_text(probed(page), encoding="utf-8")
    for width in (500, 1280):  # 500 px: the narrowest window headless chromium opens
        dom = run_chromium(profile, "--dump-dom", *([f"--screenshot={shot}"] if width == 1280 else []),
                           f"--window-size={width},2000", measured.as_uri()).stdout  # fmt: skip
        fit = measure(dom)
        assert fit["innerWidth"] == width and fit["scrollWidth"] <= width, fit
        assert fit["overflowing"] == [], fit["overflowing"][:5]
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 22)
        assert colours is not None and len(colours) >= 16, "the screenshot is (nearly) blank"
        assert max(colours)[0] < 0.97 * 1280 * 2000, "the screenshot is (nearly) all one colour"
        present = {c for _n, c in colours}
        assert (0x4A, 0x7A, 0xB5) in present and (0x5A, 0x9E, 0x6F) in present  # the charts' bars were drawn
    text = re.sub(r"<[^>]+>", " ", dom.split('<pre id="probe">')[0])
    assert "All " in text and "entries verified" in text and "against chain 31337" in text
    for human in ("62.5 ETH", "1.25 ETH", "62.5 dUSD", "5000 dUSD", "send 1.25 ETH to " + PRIME):
        assert human in text, human
    for base_units in ("62500000000000000000", "1250000000000000000", "62500000", "5000000000", str(head_time)):
        assert base_units not in text, base_units
    assert not re.search(r"\bNone\b", text) and len(ISO.findall(text)) > 20
    assert "&lt;script&gt;document.title='pwned'" in dom and "<script>document.title" not in dom
    headings = re.findall(r"<h[12][^>]*>(.*?)</h[12]>", dom)
    assert len(headings) == len(set(headings)) and "Per-vault flows" in headings, headings
