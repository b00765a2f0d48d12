"""One self-contained HTML page per drill, for users without Allure.

Everything is inline (CSS, the timeline as SVG, the topology as a base64 PNG), so the
file can be mailed, attached to a ticket or opened from a CI artifact without a server.
Rendered by jinja2 with autoescaping (templates/report.html): this module only turns
the report into rows and cells. A picture that cannot be drawn on this machine
(graphviz missing) is replaced by a visible note rather than losing the whole report of
a drill that may have failed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from stackdrill.report.model import Report
from stackdrill.report.pictures import topology_png
from stackdrill.report.render import Row, Table, columns, environment, seconds
from stackdrill.report.timeline import (
    ENGINE_COLOURS,
    FATE_COLOURS,
    FAULT_COLOUR,
    STEP_COLOUR,
    recovery_window,
    report_end,
)
from stackdrill.report.timeline_svg import timeline_svg
from stackdrill.topology.model import Topology

log = logging.getLogger(__name__)

_t = seconds
ZOOM_BELOW = 0.6  # a recovery window narrower than this share of the drill gets a close-up
PHASE_COLOURS = {**ENGINE_COLOURS, "unaccounted": "#d5d8dc"}
STEP_SHADES = ("#85c1e9", "#48c9b0", "#2e86c1", "#76d7c4", "#1abc9c", "#aed6f1", "#117a65")
LEGEND = (("fault (shaded: in force)", FAULT_COLOUR), *ENGINE_COLOURS.items(),
          ("recovery step", STEP_COLOUR), ("write acked", FATE_COLOURS["acked"]),
          ("write acked but lost", FATE_COLOURS["lost"]), ("write failed", FATE_COLOURS["failed"]),
          ("write outcome unknown", FATE_COLOURS["unknown"]), ("ok", "#1e8449"),
          ("failed", "#c0392b"), ("never ran", "#d68910"))


def _instances(report: Report) -> Table:
    rows = tuple(Row((i.name, i.host_before or "—", i.host_after or "—", i.state,
                      str(i.acked_writes), str(i.lost_writes), _t(i.rto_s),
                      i.attach_mode or "—", i.reason),
                     "bad" if i.lost_writes or i.host_after is None else "")
                 for i in report.instances)
    return Table(columns("instance", "host before", "host after", "state", "acked writes",
                         "lost writes", "RTO (s)", "attach", "reason",
                         num=("acked writes", "lost writes", "RTO (s)")), rows)


def _checks(report: Report) -> Table:
    rows = []
    for c in report.checks:
        if not c.ran:
            cls, word = "warn", Markup('<span class="never">NEVER RAN</span>')
        elif c.ok:
            cls, word = "", Markup('<span class="ok">ok</span>')
        else:
            cls, word = "bad", Markup('<span class="fail">FAILED</span>')
        rows.append(Row((c.name, word, c.detail), cls))
    return Table(columns("check", "result", "detail"), tuple(rows))


def _faults(report: Report) -> Table:
    rows = tuple(Row((_t(f.at), f.kind, f.description, _t(f.healed_at))) for f in report.faults)
    return Table(columns("at (s)", "kind", "fault", "healed at (s)",
                         num=("at (s)", "healed at (s)")), rows)


def _time_spent(report: Report) -> Table:
    """One row per recovered instance, one column per phase (summed where a phase ran
    twice), then the total, which is the RTO."""
    timed = [i for i in report.instances if i.time_spent]
    names: list[str] = []
    for inst in timed:
        names += [s.phase for s in inst.time_spent if s.phase not in names]
    rows = []
    for inst in timed:
        per = {n: [s.seconds for s in inst.time_spent if s.phase == n] for n in names}
        rows.append(Row((inst.name, *(_t(sum(per[n])) if per[n] else "—" for n in names),
                         _t(inst.rto_s))))
    heads = [f"{n} (s)" for n in names]
    return Table(columns("instance", *heads, "RTO (s)", num=(*heads, "RTO (s)")), tuple(rows))


def _phase_colours(report: Report) -> dict[str, str]:
    """The engine's phases in their timeline colours, each recovery step its own shade."""
    out = dict(PHASE_COLOURS)
    steps = [s.phase for i in report.instances for s in i.time_spent if s.phase not in out]
    for n, name in enumerate(dict.fromkeys(steps)):
        out[name] = STEP_SHADES[n % len(STEP_SHADES)]
    return out


def _stacks(report: Report, colours: dict[str, str]
            ) -> list[tuple[str, float, list[tuple[str, float, str]]]]:
    """(instance, RTO, [(phase, seconds, colour)]) for the stacked bars under the table."""
    return [(i.name, i.rto_s or 0.0, [(s.phase, s.seconds, colours[s.phase])
                                      for s in i.time_spent])
            for i in report.instances if i.time_spent]


def _phases(report: Report) -> Table:
    rows = tuple(Row((name, _t(secs))) for name, secs in report.phases.items())
    return Table(columns("phase", "seconds", num=("seconds",)), rows)


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


def _state(report: Report) -> Table:
    """DRBD roles/disks/connections and LVM metadata per host, before and after, as an
    operator compares `drbdadm status` and `lvs` output."""
    rows: list[Row] = []
    before, after = report.state_before.get("drbd"), report.state_after.get("drbd")
    if isinstance(before, dict) and isinstance(after, dict):
        for res in sorted(set(before) | set(after)):
            for host in sorted(set(before.get(res) or {}) | set(after.get(res) or {})):
                b, a = (before.get(res) or {}).get(host), (after.get(res) or {}).get(host)
                rows.append(Row((f"DRBD {res}", host, _drbd(b), _drbd(a)),
                                "warn" if _drbd(b) != _drbd(a) else ""))
    for label, value in (("LVM", "lvm"), ("power", "power")):
        b_map = _by_host(report.state_before.get(value))
        a_map = _by_host(report.state_after.get(value))
        for key in sorted(set(b_map) | set(a_map)):
            b, a = b_map.get(key, "—"), a_map.get(key, "—")
            rows.append(Row((label, key, b, a), "warn" if b != a else ""))
    return Table(columns("what", "where", "before", "after"), tuple(rows))


def _raw(report: Report) -> list[tuple[str, str]]:
    """The raw JSON, folded under the state table."""
    def text(value: dict[str, Any]) -> str:
        return json.dumps(value, indent=2, sort_keys=True, default=str) if value else \
            "(not observed)"
    out = [("before the fault (raw)", text(report.state_before)),
           ("after recovery (raw)", text(report.state_after))]
    return out + ([("extra", text(report.extra))] if report.extra else [])


def _picture(draw: Callable[[], bytes], alt: str) -> Markup:
    try:
        png = draw()
    except Exception as exc:  # a missing `dot` must not cost the user the whole report
        log.warning("cannot draw %s: %s", alt, exc)
        return Markup('<p class="note">{} unavailable: {}</p>').format(alt, str(exc))
    data = base64.b64encode(png).decode("ascii")
    # Wide pictures (big topologies) shrink to the page; a click shows them full size,
    # scrollable (a CSS checkbox toggle: the page stays free of scripts).
    return Markup('<div class="pic"><label title="click to zoom"><input type="checkbox" '
                  'class="zoom"><img alt="{}" src="data:image/png;base64,{}"></label></div>'
                  ).format(alt, data)


def _zoom(report: Report) -> dict[str, Any]:
    """A close-up of the recovery when it is a small part of a long drill."""
    window = recovery_window(report)
    if window is None or window[1] - window[0] > ZOOM_BELOW * max(report.duration, 1e-9):
        return {"zoom": None, "zoom_from": None, "zoom_to": None}
    return {"zoom": timeline_svg(report, window), "zoom_from": window[0], "zoom_to": window[1]}


def render_html(report: Report, topology: Topology) -> str:
    """The whole report as one HTML document (str)."""
    env = environment()
    common = {"r": report, "topology": report.topology or topology.name,
              "title": f"{report.verdict.upper()} {report.drill} (seed {report.seed})"}
    if report.errored:  # an infrastructure error: the state and the reason, no pictures
        return env.get_template("error.html").render(
            common, banner_class="error", heading=f"ERROR — {report.drill}")
    colours = _phase_colours(report)
    stacks = _stacks(report, colours)
    return env.get_template("report.html").render(
        common, banner_class=report.verdict,
        heading=f"{'PASS' if report.passed else 'FAIL'} — {report.drill}",
        end=report_end(report), why=report.failed_checks if not report.passed else None,
        instances=_instances(report), checks=_checks(report), faults=_faults(report),
        legend=LEGEND, timeline=timeline_svg(report), **_zoom(report),
        topology_img=_picture(lambda: topology_png(topology, report), "topology picture"),
        time_spent=_time_spent(report), stacks=stacks,
        stack_legend=[(n, c) for n, c in colours.items()
                      if any(p == n for _i, _r, parts in stacks for p, _s, _c in parts)],
        longest=max([rto for _n, rto, _p in stacks] + [1e-9]),
        phases=_phases(report), state=_state(report), raw=_raw(report))
