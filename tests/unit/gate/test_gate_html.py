"""The gate's page: the summary table first with one row per drill in the gate's order
and its verdict, each drill's section with its victim, why, checks and its own report
embedded; NOT APPLICABLE and ERROR read as such, never as PASS; text is escaped."""

from __future__ import annotations

import html
import re

import pytest

from stackdrill.api import Lab, LabOptions
from stackdrill.backends import REGISTRY
from stackdrill.backends.sim import SimBackend
from stackdrill.errors import LabNotReadyError
from stackdrill.gate import GateVerdict, run_gate
from stackdrill.gate.html import drill_page, render_gate_html
from stackdrill.gate.report import GateReport
from stackdrill.shipped import topology_path
from stackdrill.topology import Topology
from stackdrill.topology.load import load_topology


class HostileBackend(SimBackend):
    """A lab that never comes up, with markup in its reason."""

    name = "hostile"

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        raise LabNotReadyError("guest <script>alert(1)</script> silent")


def shipped(name: str) -> Topology:
    path = topology_path(name)
    assert path is not None
    return load_topology(path)


def page_of(gate: GateReport, topology: Topology) -> str:
    pages = {r.name: drill_page(r, topology) for r in gate.results}
    return render_gate_html(gate, {n: p for n, p in pages.items() if p}, {},
                            {n: f"drills/{n}.html" for n, p in pages.items() if p})


def summary_rows(page: str) -> list[list[str]]:
    table = page.split("<h2>Verdict per drill</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"[a-z]*\">(.*?)</tr>", table, re.DOTALL)
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in
             re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)] for row in rows]


def test_the_summary_comes_first_with_one_verdict_per_drill() -> None:
    topology = shipped("nova-nbd")
    gate = run_gate(topology, only={"host-loss", "split-brain", "mgmt-partition"})
    page = page_of(gate, topology)
    assert page.index("Verdict per drill") < page.index('<h2 id="host-loss">')
    rows = summary_rows(page)
    assert [(r[0], r[2]) for r in rows] == [("Host loss", "PASS"),
                                           ("Management partition", "PASS"),
                                           ("Split brain", "NOT APPLICABLE")]
    assert rows[0][1] == "cmp1" and float(rows[0][3]) > 0
    assert rows[2][4] == "no DRBD resource: no replication link"
    assert "PASS — acceptance gate for nova-nbd" in page
    assert gate.topology_sha256 in page and "backend <b>sim</b>" in page
    # each drill that ran: its checks, a link to its page and that page embedded
    host_loss = page.split('<h2 id="host-loss">', 1)[1].split("<h2 ", 1)[0]
    assert "exactly_once" in host_loss and 'href="drills/host-loss.html"' in host_loss
    assert 'srcdoc="&lt;!DOCTYPE html&gt;' in host_loss and "PASS — host-loss" in host_loss


def test_errors_read_as_errors_and_their_text_is_escaped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "hostile", f"{__name__}:HostileBackend")
    topology = shipped("drbd-pair")
    gate = run_gate(topology, backend="hostile", only={"host-loss"})
    assert gate.verdict is GateVerdict.ERROR
    page = page_of(gate, topology)
    assert "<script>alert(1)</script>" not in page
    assert "ERROR — acceptance gate for drbd-pair" in page
    (row,) = summary_rows(page)
    assert row[2] == "ERROR" and "<script>alert(1)</script>" in row[4]
    assert 'class="banner error"' in page and "PASS" not in page.split("<main>")[1].split(
        "<p class=\"legend\">")[0]
