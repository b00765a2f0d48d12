"""The gate's report as one self-contained HTML page, the file attached to a ticket.

Rendered through the drill reports' own jinja2 environment and base template (one
stylesheet, one banner, autoescaping on): the summary table first (drill, victim,
verdict, RTO, what failed), then one section per drill with its victim, why it was
chosen and its checks, and the drill's full report page embedded (an iframe's srcdoc,
so the page needs no server and no sibling files) and linked to its own file.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from stackdrill.gate.report import DrillResult, GateReport, GateVerdict
from stackdrill.report.render import Row, Table, columns, environment, seconds
from stackdrill.topology import Topology

VERDICT_CLASS = {GateVerdict.PASS: "ok", GateVerdict.FAIL: "fail", GateVerdict.ERROR: "never",
                 GateVerdict.NOT_APPLICABLE: ""}
ROW_CLASS = {GateVerdict.FAIL: "bad", GateVerdict.ERROR: "warn"}
BANNER = {GateVerdict.PASS: "pass", GateVerdict.FAIL: "fail", GateVerdict.ERROR: "error"}


@dataclass(frozen=True)
class DrillSection:
    """One drill's section of the page."""

    r: DrillResult
    word: Markup
    description: str
    checks: Table | None
    link: str
    page: str


def _word(verdict: GateVerdict) -> Markup:
    return Markup('<span class="{}">{}</span>').format(VERDICT_CLASS[verdict], verdict.value)


def _what(result: DrillResult) -> str:
    if result.verdict is GateVerdict.FAIL:
        return "; ".join(result.failed) or result.reason
    return result.reason


def _summary(gate: GateReport) -> Table:
    rows = tuple(Row((Markup('<a href="#{}">{}</a>').format(r.name, r.title), r.victim or "—",
                      _word(r.verdict), seconds(r.rto_s), _what(r)),
                     ROW_CLASS.get(r.verdict, ""))
                 for r in gate.results)
    return Table(columns("drill", "victim", "verdict", "RTO (s)", "what failed / why",
                         num=("RTO (s)",)), rows)


def _checks(result: DrillResult) -> Table | None:
    if result.report is None or not result.report.checks:
        return None
    rows = tuple(Row((c.name, Markup('<span class="ok">ok</span>') if c.ok else
                      Markup('<span class="fail">FAILED</span>'), c.detail),
                     "" if c.ok else "bad") for c in result.report.checks)
    return Table(columns("check", "result", "detail"), rows)


def drill_page(result: DrillResult, topology: Topology) -> str:
    """The drill's own report page, as `stackdrill run --report X.html` writes it."""
    from stackdrill.report.html import render_html

    if result.report is None:
        return ""
    return render_html(result.report, topology)


def render_gate_html(gate: GateReport, pages: dict[str, str],
                     descriptions: dict[str, str], links: dict[str, str]) -> str:
    """The whole gate as one HTML document; `pages` are the drills' own report pages by
    drill name (embedded), `links` where each is written next to this page."""
    sections = [DrillSection(r, _word(r.verdict), descriptions.get(r.name, ""), _checks(r),
                             links.get(r.name, ""), pages.get(r.name, ""))
                for r in gate.results]
    return environment().get_template("gate.html").render(
        g=gate, title=f"{gate.verdict.value} gate {gate.topology} on {gate.backend}",
        banner_class=BANNER[gate.verdict],
        heading=f"{gate.verdict.value} — acceptance gate for {gate.topology}",
        summary=_summary(gate), drills=sections)
