"""The timeline picture: one lane per concern (faults, detection, fencing, planning, each
instance's recovery, checks), lab seconds on the x axis.

Read top to bottom it answers the operator's questions in order: what broke, when it
was noticed, when the failed host was fenced, and how long each guest took to come
back. Drawn with matplotlib's Agg canvas on a private Figure (no pyplot state), so it
is safe in parallel test workers and needs no display.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from stackdrill.report.model import Report, TimelineEvent, order_lanes

log = logging.getLogger(__name__)

MAX_INSTANCE_LANES = 30
LANE_COLOURS = {
    "fault": "#c0392b",
    "detection": "#e67e22",
    "fencing": "#8e44ad",
    "planning": "#2980b9",
    "instance": "#27ae60",
    "check": "#7f8c8d",
}
FAIL_COLOUR = "#e74c3c"


def _colour(event: TimelineEvent) -> str:
    if event.ok is False:
        return FAIL_COLOUR
    if event.lane == "check" and event.ok:
        return "#27ae60"
    return LANE_COLOURS.get(event.lane.split(":", 1)[0], "#34495e")


def _events(report: Report) -> list[TimelineEvent]:
    """The report's timeline; faults from `report.faults` and checks from `report.checks`
    (at the drill's end) when the timeline has none of them."""
    events = list(report.timeline)
    if not any(e.lane == "check" for e in events):
        end = report.started + report.duration
        events += [
            TimelineEvent(at=end, lane="check", label=c.name, ok=c.ok) for c in report.checks
        ]
    if not any(e.lane == "fault" for e in events):
        events += [
            TimelineEvent(at=f.at, end=f.healed_at, lane="fault", label=f.description)
            for f in report.faults
        ]
    return events


def _fold_instances(
    events: list[TimelineEvent], lanes: list[str]
) -> tuple[list[TimelineEvent], list[str]]:
    """Keep failed, then slowest, instance lanes (MAX_INSTANCE_LANES in all); fold the rest
    into one unlabelled lane."""
    inst = [lane for lane in lanes if lane.startswith("instance:")]
    if len(inst) <= MAX_INSTANCE_LANES:
        return events, lanes
    last = {lane: max((e.end or e.at) for e in events if e.lane == lane) for lane in inst}
    bad = {e.lane for e in events if e.ok is False}
    rank = sorted(inst, key=lambda lane: (lane not in bad, -last[lane], lane))
    keep = set(rank[: MAX_INSTANCE_LANES - 1])
    other = f"instance:({len(inst) - len(keep)} more)"
    folded = [
        e
        if not e.lane.startswith("instance:") or e.lane in keep
        else e.model_copy(update={"lane": other, "label": ""})
        for e in events
    ]
    new_lanes = [lane for lane in lanes if not lane.startswith("instance:") or lane in keep]
    pos = max(i for i, lane in enumerate(new_lanes) if lane.startswith("instance:")) + 1
    return folded, [*new_lanes[:pos], other, *new_lanes[pos:]]


def _draw(ax: Any, e: TimelineEvent, y: int) -> None:
    """A span as a bar, a point as a marker (a failure as a red X, above the rest)."""
    colour = _colour(e)
    if e.end is not None and e.end > e.at:
        ax.broken_barh(
            [(e.at, e.end - e.at)],
            (y - 0.3, 0.6),
            color=colour,
            alpha=0.85,
            zorder=2,
            edgecolor="white",
            linewidth=0.8,
        )
    else:
        marker = "X" if e.ok is False else ("v" if e.lane == "fault" else "D")
        z = 5 if e.ok is False else 3  # a failure is never hidden under a success
        ax.plot([e.at], [y], marker=marker, color=colour, markersize=8, zorder=z)
    if e.lane == "fault":
        ax.axvline(e.at, color=LANE_COLOURS["fault"], lw=0.8, ls=":", zorder=1)


def _fits(e: TimelineEvent, per_char: float) -> bool:
    return e.end is not None and len(e.label) * per_char + 2 * per_char < e.end - e.at


def _clusters(
    events: list[TimelineEvent], gap: float, per_char: float
) -> list[list[TimelineEvent]]:
    """Events of one lane that follow each other within `gap` share one label, except a
    span whose label fits inside its own bar."""
    groups: list[list[TimelineEvent]] = []
    end = float("-inf")
    for e in sorted(events, key=lambda e: (e.at, e.label)):
        if _fits(e, per_char):
            groups.append([e])
            end = float("-inf")
        elif (
            groups and len(groups[-1]) and not _fits(groups[-1][0], per_char) and e.at <= end + gap
        ):
            groups[-1].append(e)
            end = max(end, e.end or e.at)
        else:
            groups.append([e])
            end = e.end or e.at
    return groups


def _label_text(group: list[TimelineEvent]) -> str:
    """A lone event's label; a cluster's labels in order, each once, failures marked ✗."""
    if len(group) == 1:
        return group[0].label
    names = dict.fromkeys(("✗ " if e.ok is False else "") + e.label for e in group)
    return " › ".join(names)


SLOTS = (0.0, -0.3, 0.3, -0.15, 0.15)  # vertical offsets tried for a label, in order


def _free_slot(
    lane: str,
    candidates: Callable[[float], tuple[float, float]],
    bars: list[tuple[float, float]],
    placed: dict[tuple[str, float], list[tuple[float, float]]],
    *,
    avoid_bars: bool,
) -> tuple[float, tuple[float, float]]:
    """The first vertical slot whose box (from `candidates(dy)`) overlaps no label placed
    there before (nor, on the bar's own line when `avoid_bars`, another bar); the last
    slot when none is free."""
    dy, box = SLOTS[0], candidates(SLOTS[0])
    for dy in SLOTS:
        box = candidates(dy)
        taken = placed.get((lane, dy), [])
        if dy == 0.0 and avoid_bars:
            taken = taken + bars
        if all(box[1] <= a or box[0] >= b for a, b in taken):
            break
    return dy, box


def _label(
    ax: Any,
    group: list[TimelineEvent],
    y: int,
    per_char: float,
    bars: list[tuple[float, float]],
    placed: dict[tuple[str, float], list[tuple[float, float]]],
    x_max: float,
) -> None:
    """One label per cluster: inside its bar when it fits, else beside or above/below it,
    in the first vertical slot where it overlaps no other label (nor, on the bar's own
    line, another bar). A cluster's label lists its events in order, failures marked ✗."""
    first = group[0]
    text = _label_text(group)
    text_w = len(text) * per_char
    start = first.at
    end = max((e.end or e.at) for e in group)
    is_span = len(group) == 1 and first.end is not None and first.end > first.at
    inside = is_span and text_w + 2 * per_char < end - start
    x_line = start + per_char if inside else end + 1.5 * per_char
    if not inside and x_line + text_w > x_max:  # no room on the right: end left of it
        x_line = start - 1.5 * per_char - text_w

    def box_at(dy: float) -> tuple[float, float]:
        x = x_line if dy == 0.0 or not is_span or inside else start + 0.5 * per_char
        return (x, x + text_w)

    dy, box = _free_slot(first.lane, box_at, bars, placed, avoid_bars=not inside)
    placed.setdefault((first.lane, dy), []).append(box)
    white = inside and dy == 0.0  # bold white text on its own bar
    failed = any(e.ok is False for e in group)
    ax.text(
        box[0],
        y + dy,
        text,
        va="center",
        ha="left",
        fontsize=8,
        zorder=4,
        clip_on=True,
        color="white" if white else (FAIL_COLOUR if failed else "#1c2833"),
        fontweight="bold" if white else "normal",
        bbox=None
        if white
        else {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
    )


def timeline_png(report: Report, *, width_in: float = 13.0, dpi: int = 100) -> bytes:
    """Render the report's timeline as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    events = _events(report)
    lanes = order_lanes(events)
    events, lanes = _fold_instances(events, lanes)
    if not lanes:
        lanes = ["(no events)"]
    t_end = max([report.started + report.duration] + [(e.end or e.at) for e in events] + [1.0])
    t0 = min([report.started] + [e.at for e in events])
    span = max(t_end - t0, 1e-6)

    fig = Figure(figsize=(width_in, 1.4 + 0.42 * len(lanes)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    row = {lane: i for i, lane in enumerate(lanes)}
    for i in range(0, len(lanes), 2):
        ax.axhspan(i - 0.5, i + 0.5, color="#f4f6f7", zorder=0)
    x_min, x_max = t0 - 0.02 * span, t_end + 0.22 * span
    per_char = (
        (x_max - x_min) / (width_in * dpi * 0.85) * 6.4
    )  # ~6 px per 8 pt bold glyph, with slack
    bars: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        _draw(ax, e, row[e.lane])
        if e.end is not None and e.end > e.at:
            bars.setdefault(e.lane, []).append((e.at, e.end))
    placed: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for lane in lanes:
        lane_events = [e for e in events if e.lane == lane and e.label]
        for group in _clusters(lane_events, 0.02 * span, per_char):
            _label(ax, group, row[lane], per_char, bars.get(lane, []), placed, x_max)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(lanes, fontsize=9)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_xlim(x_min, x_max)
    ax.set_xlabel("lab time (s)")
    ax.grid(axis="x", color="#d5d8dc", lw=0.6, zorder=0)
    verdict = report.verdict.upper()
    ax.set_title(
        f"{report.drill} on {report.backend}, seed {report.seed} — {verdict}",
        fontsize=11,
        color="#1e8449" if report.passed else "#922b21",
        loc="left",
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
