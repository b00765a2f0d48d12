"""The timeline as inline SVG: where each lane and mark goes, then one jinja2 template.

Lab seconds map linearly onto the plot; marks of one kind that would overlap are put on
separate sub-rows of their lane (first fit), so no operation hides another. Text never
leaves the picture: lane names are cut to the left gutter, a label is drawn inside its
bar only when it fits (cut with "…" otherwise, or left to the hover text), and the axis'
outer tick labels are anchored inwards. Hovering any mark shows its details (an SVG
<title>), with no script.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

from stackdrill.report.model import Report
from stackdrill.report.render import environment
from stackdrill.report.timeline import Lane, Mark, fault_windows, lanes, report_end

WIDTH = 1240
GUTTER = 150  # lane names
RIGHT = 16
ROW_H, ROW_GAP, LANE_PAD = 12, 3, 6
AXIS_H = 30
POINT_R = 5
LABEL_CHAR_W = 6.6  # 11 px sans-serif, a little wider than the widest common glyphs' mean
NAME_CHAR_W = 7.2  # 12 px
MIN_BAR_W = 3.0  # a single lost write stays visible
TOUCH = 0.5  # pixels two marks of one row may share (back-to-back steps stay on one row)
ROW_ORDER = ("faults", "events", "steps", "checks")  # then writes rows, by volume


@dataclass(frozen=True)
class Drawn:
    """A mark placed on the picture (pixels)."""

    x: float
    y: float
    w: float
    h: float
    colour: str
    tip: str
    label: str
    point: bool
    failed: bool

    @property
    def ink(self) -> str:
        """The label's colour: white on a dark bar, near-black on a light one."""
        r, g, b = (int(self.colour[i:i + 2], 16) for i in (1, 3, 5))
        return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else "#1c2833"


@dataclass(frozen=True)
class DrawnLane:
    name: str
    tip: str
    y: float
    h: float
    marks: tuple[Drawn, ...]


@dataclass(frozen=True)
class Tick:
    x: float
    text: str
    anchor: str


@dataclass(frozen=True)
class View:
    """Everything the template draws."""

    width: int
    height: float
    plot_x0: float
    plot_x1: float
    lanes: tuple[DrawnLane, ...]
    ticks: tuple[Tick, ...]
    windows: tuple[tuple[float, float], ...]  # shaded fault windows: (x, width)
    axis_y: float
    title: str


class _Scale:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0, self.t1 = t0, max(t1, t0 + 1e-6)
        self.x0, self.x1 = float(GUTTER), float(WIDTH - RIGHT)

    def x(self, t: float) -> float:
        return self.x0 + (t - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)


def fit_label(text: str, width: float, char_w: float = LABEL_CHAR_W) -> str:
    """The text if it fits in `width` pixels, else cut with "…" (at least 3 characters
    kept), else empty."""
    room = int((width - 6) // char_w)
    if len(text) <= room:
        return text
    return text[: room - 1] + "…" if room >= 4 else ""


def _row_kinds(marks: Iterable[Mark]) -> list[str]:
    kinds = {m.row for m in marks}
    return [k for k in ROW_ORDER if k in kinds] + sorted(k for k in kinds if k not in ROW_ORDER)


def _extent(m: Mark, scale: _Scale) -> tuple[float, float]:
    if m.end is None:
        x = scale.x(m.start)
        return x - POINT_R, x + POINT_R
    x0, x1 = scale.x(max(m.start, scale.t0)), scale.x(min(m.end, scale.t1))
    return x0, max(x1, x0 + MIN_BAR_W)


def _visible(m: Mark, scale: _Scale) -> bool:
    return (m.end if m.end is not None else m.start) >= scale.t0 and m.start <= scale.t1


def _pack(lane: Lane, scale: _Scale) -> tuple[list[tuple[int, Mark, float, float]], int]:
    """(row, mark, x0, x1) per visible mark and the number of rows: kinds in ROW_ORDER,
    first fit within a kind (a folded lane keeps one row per kind)."""
    placed: list[tuple[int, Mark, float, float]] = []
    row_base = 0
    for kind in _row_kinds(m for m in lane.marks if _visible(m, scale)):
        ends: list[float] = []  # right edge of the last mark in each sub-row
        marks = sorted((m for m in lane.marks if m.row == kind and _visible(m, scale)),
                       key=lambda m: (m.start, m.failed))
        for m in marks:
            x0, x1 = _extent(m, scale)
            row = next((i for i, e in enumerate(ends) if x0 >= e - TOUCH), None)
            if row is None and lane.overlap and ends:
                row = 0
            if row is None:
                ends.append(x1)
                row = len(ends) - 1
            ends[row] = max(ends[row], x1)
            placed.append((row_base + row, m, x0, x1))
        row_base += max(1, len(ends))
    return placed, max(row_base, 1)


def _drawn(row: int, m: Mark, x0: float, x1: float, top: float) -> Drawn:
    y = top + LANE_PAD + row * (ROW_H + ROW_GAP)
    if m.end is None:
        return Drawn(x=(x0 + x1) / 2, y=y + ROW_H / 2, w=0, h=ROW_H, colour=m.colour,
                     tip=m.tip, label="", point=True, failed=m.failed)
    return Drawn(x=x0, y=y, w=x1 - x0, h=ROW_H, colour=m.colour, tip=m.tip,
                 label=fit_label(m.label, x1 - x0), point=False, failed=m.failed)


def _ticks(scale: _Scale) -> list[Tick]:
    """About ten ticks at 1, 2 or 5 times a power of ten lab seconds."""
    raw = (scale.t1 - scale.t0) / 10
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(scale.t0 / step) * step
    out = []
    for i in range(int((scale.t1 - first) / step + 1e-9) + 1):
        t = first + i * step
        x = scale.x(t)
        anchor = ("start" if x - scale.x0 < 20 else "end" if scale.x1 - x < 20 else "middle")
        out.append(Tick(x=x, text=f"{t:g}", anchor=anchor))
    return out


def view(report: Report, window: tuple[float, float] | None = None) -> View:
    """Lay the report's lanes out over `window` (lab seconds; the whole drill by default)."""
    t0, t1 = window or (report.started, report_end(report))
    if window is None:
        t1 = max([t1, *(m.end or m.start for lane in lanes(report) for m in lane.marks)])
    scale = _Scale(t0, t1)
    drawn: list[DrawnLane] = []
    top = 0.0
    for lane in lanes(report):
        placed, rows = _pack(lane, scale)
        if not placed:  # nothing of this lane in the window
            continue
        h = 2 * LANE_PAD + rows * ROW_H + (rows - 1) * ROW_GAP
        marks = sorted((_drawn(r, m, x0, x1, top) for r, m, x0, x1 in placed),
                       key=lambda d: d.failed)  # failures on top
        drawn.append(DrawnLane(name=fit_label(lane.name, GUTTER - 14, NAME_CHAR_W) or "…",
                               tip=lane.tip, y=top, h=h, marks=tuple(marks)))
        top += h
    windows = tuple((scale.x(max(a, t0)), scale.x(min(b, t1)) - scale.x(max(a, t0)))
                    for a, b in fault_windows(report) if b >= t0 and a <= t1)
    return View(width=WIDTH, height=top + AXIS_H, plot_x0=scale.x0, plot_x1=scale.x1,
                lanes=tuple(drawn), ticks=tuple(_ticks(scale)), windows=windows, axis_y=top,
                title=f"timeline of {report.drill}, lab seconds {t0:g} to {t1:g}")


def timeline_svg(report: Report, window: tuple[float, float] | None = None) -> Markup:
    """The timeline as one <svg> element (inline in the page; no external reference)."""
    return Markup(environment().get_template("timeline.svg").render(v=view(report, window)))
