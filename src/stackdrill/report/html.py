"""One self-contained HTML page per drill, for users without Allure.

Everything is inline (CSS, pictures as base64 PNG), so the file can be mailed,
attached to a ticket or opened from a CI artifact without a server. A picture that
cannot be drawn on this machine (graphviz missing) is replaced by a visible note
rather than losing the whole report of a drill that may have failed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from html import escape
from importlib import resources
from string import Template
from typing import Any

from stackdrill.report.model import Report
from stackdrill.report.pictures import timeline_png, topology_png
from stackdrill.topology.model import Topology

log = logging.getLogger(__name__)


def _table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], empty: str) -> str:
    """rows: (css class, cells already escaped)."""
    body = [
        f'<tr class="{cls}">' + "".join(f"<td{_num(c)}>{c}</td>" for c in cells) + "</tr>"
        for cls, cells in rows
    ]
    if not body:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(cell: str) -> str:
    return ' class="num"' if cell.replace(".", "", 1).replace("-", "", 1).isdigit() else ""


def _t(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _instances(report: Report) -> str:
    rows = []
    for i in report.instances:
        cls = "bad" if i.lost_writes or i.host_after is None else ""
        cells = [
            escape(i.name),
            escape(i.host_before or "—"),
            escape(i.host_after or "—"),
            escape(i.state),
            str(i.acked_writes),
            str(i.lost_writes),
            _t(i.rto_s),
            escape(i.attach_mode or "—"),
            escape(i.reason),
        ]
        rows.append((cls, cells))
    headers = [
        "instance",
        "host before",
        "host after",
        "state",
        "acked writes",
        "lost writes",
        "RTO (s)",
        "attach",
        "reason",
    ]
    return _table(headers, rows, "No instance in this drill.")


def _checks(report: Report) -> str:
    rows = []
    for c in report.checks:
        if not c.ran:
            cls, word = "warn", '<span class="never">NEVER RAN</span>'
        elif c.ok:
            cls, word = "", '<span class="ok">ok</span>'
        else:
            cls, word = "bad", '<span class="fail">FAILED</span>'
        rows.append((cls, [escape(c.name), word, escape(c.detail)]))
    return _table(["check", "result", "detail"], rows, "No check ran: this drill proves nothing.")


def _faults(report: Report) -> str:
    rows = [
        ("", [_t(f.at), escape(f.kind), escape(f.description), _t(f.healed_at)])
        for f in report.faults
    ]
    return _table(["at (s)", "kind", "fault", "healed at (s)"], rows, "No fault was injected.")


def _phases(report: Report) -> str:
    longest = max(
        [*report.phases.values(), *(s for st in report.steps.values() for s in st.values()), 1e-9]
    )

    def bar(seconds: float) -> str:
        return f'<span class="bar" style="width:{max(1.0, 300 * seconds / longest):.0f}px"></span>'

    rows = [("", [escape(name), _t(secs), bar(secs)]) for name, secs in report.phases.items()]
    out = _table(["phase", "seconds", ""], rows, "No phase timings recorded.")
    step_rows = [
        ("", [escape(inst), escape(step), _t(secs), bar(secs)])
        for inst, steps in report.steps.items()
        for step, secs in steps.items()
    ]
    if step_rows:
        out += "<h3>Recovery steps per instance</h3>"
        out += _table(["instance", "step", "seconds", ""], step_rows, "")
    return out


def _picture(draw: Callable[[], bytes], alt: str) -> str:
    try:
        png = draw()
    except Exception as exc:  # a missing `dot` must not cost the user the whole report
        log.warning("cannot draw %s: %s", alt, exc)
        return f'<p class="note">{escape(alt)} unavailable: {escape(str(exc))}</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _json_block(title: str, value: dict[str, Any]) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str) if value else "(not observed)"
    return f"<details open><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def _summary(report: Report) -> str:
    failed = report.failed_checks
    if not failed and report.passed:
        return ""
    items = "".join(f"<li><b>{escape(c.name)}</b>: {escape(c.detail)}</li>" for c in failed)
    items = items or "<li>no check ran</li>"
    return f'<h2>Why it failed</h2><ul class="summary">{items}</ul>'


def render_html(report: Report, topology: Topology) -> str:
    """The whole report as one HTML document (str)."""
    template = Template(
        resources.files("stackdrill.report").joinpath("template.html").read_text("utf-8")
    )
    state = _json_block("before the fault", report.state_before) + _json_block(
        "after recovery", report.state_after
    )
    if report.extra:
        state += _json_block("extra", report.extra)
    return template.substitute(
        title=escape(f"{report.verdict.upper()} {report.drill} (seed {report.seed})"),
        verdict_class=report.verdict,
        verdict_word="PASS" if report.passed else "FAIL",
        drill=escape(report.drill),
        backend=escape(report.backend),
        seed=report.seed,
        topology=escape(report.topology or topology.name),
        started=_t(report.started),
        end=_t(report.started + report.duration),
        duration=_t(report.duration),
        trace=escape(report.trace_sha256[:16] or "—"),
        summary=_summary(report),
        instances=_instances(report),
        checks=_checks(report),
        faults=_faults(report),
        phases=_phases(report),
        timeline_img=_picture(lambda: timeline_png(report), "timeline picture"),
        topology_img=_picture(lambda: topology_png(topology, report), "topology picture"),
        state=state,
    )
