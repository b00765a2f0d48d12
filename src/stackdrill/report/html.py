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
    longest = max([*report.phases.values(), 1e-9])

    def bar(seconds: float) -> str:
        return f'<span class="bar" style="width:{max(1.0, 300 * seconds / longest):.0f}px"></span>'

    rows = [("", [escape(name), _t(secs), bar(secs)]) for name, secs in report.phases.items()]
    out = _table(["phase", "seconds", ""], rows, "No phase timings recorded.")
    if report.steps:
        out += "<h3>Recovery steps per instance (seconds)</h3>" + _steps(report)
    return out


def _steps(report: Report) -> str:
    """One row per instance, one column per step: a matrix stays short for big drills."""
    names: list[str] = []
    for steps in report.steps.values():
        names += [n for n in steps if n not in names]
    rows = [("", [escape(inst), *(_t(steps.get(n)) for n in names),
                  _t(sum(steps.values()))]) for inst, steps in report.steps.items()]
    return _table(["instance", *names, "total"], rows, "")


def _state(report: Report) -> str:
    """DRBD roles/disks/connections and LVM metadata per host, before and after, as an
    operator compares `drbdadm status` and `lvs` output; the raw JSON stays folded."""
    rows: list[tuple[str, list[str]]] = []
    before, after = report.state_before.get("drbd"), report.state_after.get("drbd")
    if isinstance(before, dict) and isinstance(after, dict):
        for res in sorted(set(before) | set(after)):
            hosts = sorted(set(before.get(res) or {}) | set(after.get(res) or {}))
            for host in hosts:
                b, a = (before.get(res) or {}).get(host), (after.get(res) or {}).get(host)
                changed = "warn" if _drbd(b) != _drbd(a) else ""
                rows.append((changed, [escape(f"DRBD {res}"), escape(host),
                                       escape(_drbd(b)), escape(_drbd(a))]))
    for label, value in (("LVM", "lvm"), ("power", "power")):
        b_map, a_map = _by_host(report.state_before.get(value)), _by_host(
            report.state_after.get(value))
        for key in sorted(set(b_map) | set(a_map)):
            b, a = b_map.get(key, "—"), a_map.get(key, "—")
            rows.append(("warn" if b != a else "", [label, escape(key), escape(b), escape(a)]))
    out = _table(["what", "where", "before", "after"], rows, "No DRBD, LVM or power state.")
    raw = _json_block("before the fault (raw)", report.state_before)
    raw += _json_block("after recovery (raw)", report.state_after)
    if report.extra:
        raw += _json_block("extra", report.extra)
    return out + raw


def _drbd(fields: Any) -> str:
    if not isinstance(fields, dict):
        return "—"
    if fields.get("running") is False:
        return "down"
    text = "/".join(str(fields.get(k, "?")) for k in ("role", "disk", "connection")
                    if k in fields)
    return text + (" · split brain" if fields.get("split_brain") else "")


def _by_host(value: Any) -> dict[str, str]:
    """power: host -> state; lvm: 'vg@host' -> 'seqno N · LVs · active' (list or dict)."""
    out: dict[str, str] = {}
    if isinstance(value, list):
        for v in value:
            if isinstance(v, dict) and "host" in v:
                out[f"{v.get('vg')}@{v['host']}"] = (
                    f"seqno {v.get('seqno')} · {len(v.get('lvs') or [])} LVs · "
                    f"active: {', '.join(v.get('active') or []) or 'none'}")
    elif isinstance(value, dict):
        out = {str(k): (json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else str(v))
               for k, v in value.items()}
    return out


def _picture(draw: Callable[[], bytes], alt: str) -> str:
    try:
        png = draw()
    except Exception as exc:  # a missing `dot` must not cost the user the whole report
        log.warning("cannot draw %s: %s", alt, exc)
        return f'<p class="note">{escape(alt)} unavailable: {escape(str(exc))}</p>'
    data = base64.b64encode(png).decode("ascii")
    # Wide pictures (big topologies) shrink to the page; a click shows them full size,
    # scrollable (a CSS checkbox toggle: the page stays free of scripts).
    return (f'<div class="pic"><label title="click to zoom"><input type="checkbox" '
            f'class="zoom"><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
            "</label></div>")


def _json_block(title: str, value: dict[str, Any]) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str) if value else "(not observed)"
    return f"<details><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def _summary(report: Report) -> str:
    failed = report.failed_checks
    if not failed and report.passed:
        return ""
    items = "".join(f"<li><b>{escape(c.name)}</b>: {escape(c.detail)}</li>" for c in failed)
    items = items or "<li>no check ran</li>"
    return f'<h2>Why it failed</h2><ul class="summary">{items}</ul>'


_ERROR_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ERROR $drill (seed $seed)</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1c2833; background: #fbfcfc; }
.banner { padding: 18px 24px; color: white; background: #7d6608; }
.banner h1 { margin: 0; font-size: 28px; } .banner p { margin: 4px 0 0; opacity: .92; }
main { max-width: 1300px; margin: 0 auto; padding: 0 24px 48px; }
pre { background: #f4f6f7; padding: 10px; white-space: pre-wrap; font-size: 14px; }
</style>
</head>
<body>
<div class="banner error">
<h1>ERROR — $drill</h1>
<p>backend <b>$backend</b> · seed <b>$seed</b> · topology <b>$topology</b></p>
</div>
<main>
<h2>Infrastructure error: no verdict</h2>
<p>The lab could not be brought up, driven or observed, so this run says nothing about
the recovery under test: no check was run, nothing passed and nothing failed.</p>
<pre class="reason">$reason</pre>
</main>
</body>
</html>
""")


def _error_html(report: Report, topology: Topology) -> str:
    """An infrastructure error: the state and the reason, no checks, no pictures."""
    return _ERROR_PAGE.substitute(
        drill=escape(report.drill), backend=escape(report.backend), seed=report.seed,
        topology=escape(report.topology or topology.name), reason=escape(report.error))


def render_html(report: Report, topology: Topology) -> str:
    """The whole report as one HTML document (str)."""
    if report.errored:
        return _error_html(report, topology)
    template = Template(
        resources.files("stackdrill.report").joinpath("template.html").read_text("utf-8")
    )
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
        state=_state(report),
    )
