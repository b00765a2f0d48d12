"""What the timeline shows, Jepsen style: one lane per process, every operation in time.

Lanes: the faults, the recovery engine (detection, fencing, planning), the operator's
commands and probes, one lane per instance (its recovery steps above, its writes below,
each run of writes coloured by its own fate: acked, lost, failed, unknown), each DRBD
resource's notable events, and the checks at the end. Every mark is coloured by its own
outcome, never by the drill's verdict. This module decides what is drawn and in which
colour, in lab seconds; `timeline_svg` decides where.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stackdrill.checks import CheckResult
from stackdrill.report.model import Report, TimelineEvent, WriteRun

MAX_INSTANCE_LANES = 40  # more are folded into one lane: failures first, then the slowest

GREEN, RED, AMBER, GREY = "#1e8449", "#c0392b", "#d68910", "#7f8c8d"
FATE_COLOURS = {"acked": "#58d68d", "lost": RED, "corrupt": "#7b241c", "failed": "#e67e22",
                "unknown": "#aab7b8"}
ENGINE_COLOURS = {"detection": "#f7dc6f", "fencing": "#a569bd", "planning": "#5499c7"}
STEP_COLOUR = "#85c1e9"
FAULT_COLOUR = "#e74c3c"
ENGINE_LANES = frozenset(ENGINE_COLOURS)


@dataclass(frozen=True)
class Mark:
    """One operation or event: a bar from `start` to `end`, or a point (`end` None)."""

    start: float
    end: float | None
    colour: str
    tip: str  # what hovering shows
    label: str = ""  # drawn inside a bar wide enough for it
    row: str = "events"  # marks of one row kind share sub-rows (packed so none overlap)
    failed: bool = False  # drawn last, on top, and as a cross when a point


@dataclass
class Lane:
    """One process: the engine, the operator, an instance, a DRBD resource."""

    name: str
    tip: str
    marks: list[Mark] = field(default_factory=list)
    overlap: bool = False  # a folded lane: one sub-row per kind, marks may overlap


def _t(seconds: float) -> str:
    return f"{seconds:.1f} s"


def _event_mark(e: TimelineEvent, colour: str | None = None) -> Mark:
    """A timeline event as a bar (a span) or a point; `ok` False is red."""
    span = e.end is not None and e.end > e.at
    when = f"{_t(e.at)} → {_t(e.end or e.at)} ({_t((e.end or e.at) - e.at)})" if span else _t(
        e.at)
    if e.ok is False:
        colour = RED
    elif colour is None:
        colour = GREEN if e.ok else GREY
    return Mark(start=e.at, end=e.end if span else None, colour=colour,
                tip=f"{when}: {e.label}" + (" — FAILED" if e.ok is False else ""),
                label=e.label if span else "", row="steps" if span else "events",
                failed=e.ok is False)


def _detection_from_fault(mark: Mark, injected: list[float]) -> Mark:
    """The engine times detection from the host's last heartbeat, before the fault; drawn
    from there, the bar said the engine noticed a failure that had not happened yet. So it
    starts at the latest fault injected inside it, and the tip keeps the engine's start."""
    inside = [at for at in injected if mark.start < at < (mark.end or mark.start)]
    if not inside:
        return mark
    return replace(mark, start=inside[-1],
                   tip=f"{mark.tip} (drawn from the fault at {_t(inside[-1])}; the engine's "
                       f"grace began at the last heartbeat, {_t(mark.start)})")


def _write_mark(run: WriteRun) -> Mark:
    seqs = f"#{run.first_seq}" + (f"–{run.last_seq}" if run.last_seq != run.first_seq else "")
    words = {"acked": "acked, still there", "lost": "ACKED BUT LOST", "corrupt": "CORRUPT",
             "failed": "failed (I/O error)", "unknown": "outcome unknown"}[run.fate]
    bad = run.fate in ("lost", "corrupt")
    return Mark(start=run.start, end=max(run.end, run.start), colour=FATE_COLOURS[run.fate],
                tip=f"{_t(run.start)} → {_t(run.end)}: {run.count} write(s) to {run.volume} "
                    f"{seqs} from {run.host}: {words}",
                label=run.host if run.fate == "acked" else "", row=f"writes {run.volume}",
                failed=bad)


def _check_mark(check: CheckResult, at: float) -> Mark:
    word, colour = (("ok", GREEN) if check.ok else
                    ("NEVER RAN", AMBER) if not check.ran else ("FAILED", RED))
    return Mark(start=at, end=None, colour=colour, tip=f"check {check.name}: {word} — "
                f"{check.detail}", row="checks", failed=not check.ok)


def _instance_names(report: Report) -> list[str]:
    names = [i.name for i in report.instances]
    extra = {e.lane.removeprefix("instance:") for e in report.timeline
             if e.lane.startswith("instance:")} | {w.instance for w in report.writes}
    return names + sorted(extra - set(names))


def _instance_lane(report: Report, name: str) -> Lane:
    inst = next((i for i in report.instances if i.name == name), None)
    tip = name if inst is None else (
        f"{name}: {inst.host_before or '—'} → {inst.host_after or '—'}, {inst.state}, "
        f"{inst.acked_writes} acked / {inst.lost_writes} lost writes"
        + (f", RTO {_t(inst.rto_s)}" if inst.rto_s is not None else ""))
    lane = Lane(name, tip)
    lane.marks += [_event_mark(e, STEP_COLOUR) for e in report.timeline
                   if e.lane == f"instance:{name}"]
    lane.marks += [_write_mark(w) for w in report.writes if w.instance == name]
    return lane


def _rank_instances(report: Report, lanes: list[Lane]) -> list[Lane]:
    """Failed lanes first, then those whose recovery took longest."""
    rto = {i.name: i.rto_s or 0.0 for i in report.instances}
    return sorted(lanes, key=lambda lane: (not any(m.failed for m in lane.marks),
                                           -rto.get(lane.name, 0.0), lane.name))


def _fold(report: Report, lanes: list[Lane]) -> list[Lane]:
    """At most MAX_INSTANCE_LANES instance lanes, the rest in one overlapping lane (the
    folded instances' failures stay visible: they are drawn on top)."""
    if len(lanes) <= MAX_INSTANCE_LANES:
        return lanes
    ranked = _rank_instances(report, lanes)
    keep = {lane.name for lane in ranked[: MAX_INSTANCE_LANES - 1]}
    rest = [lane for lane in lanes if lane.name not in keep]
    folded = Lane(f"{len(rest)} more instances", ", ".join(lane.name for lane in rest),
                  overlap=True)
    for lane in rest:
        folded.marks += [Mark(m.start, m.end, m.colour, f"{lane.name}: {m.tip}", "",
                              "writes" if m.row.startswith("writes") else m.row, m.failed)
                         for m in lane.marks]
    return [lane for lane in lanes if lane.name in keep] + [folded]


def _other_lanes(report: Report) -> tuple[Lane, Lane, dict[str, Lane]]:
    engine = Lane("recovery engine", "detection, fencing and planning, as the engine timed "
                  "and announced them")
    operator = Lane("operator", "commands, probes and observe steps of the drill")
    drbd: dict[str, Lane] = {}
    injected = sorted(f.at for f in report.faults)
    for e in report.timeline:
        if e.lane in ENGINE_LANES:
            mark = _event_mark(e, ENGINE_COLOURS[e.lane] if e.end else None)
            if e.lane == "detection" and e.end is not None:
                mark = _detection_from_fault(mark, injected)
            engine.marks.append(mark)
        elif e.lane == "operator":
            operator.marks.append(_event_mark(e))
        elif e.lane.startswith("drbd:"):
            res = e.lane.removeprefix("drbd:")
            drbd.setdefault(res, Lane(f"DRBD {res}", f"DRBD resource {res}: notable events"))
            drbd[res].marks.append(_event_mark(e))
    return engine, operator, drbd


def lanes(report: Report) -> list[Lane]:
    """Every lane in reading order, empty ones left out."""
    faults = Lane("faults", "faults injected, until healed (shaded across every lane)")
    for f in report.faults:
        faults.marks.append(Mark(
            start=f.at, end=f.healed_at if f.healed_at is not None else report_end(report),
            colour=FAULT_COLOUR, label=f.kind, row="faults",
            tip=f"{_t(f.at)} → " + (f"healed at {_t(f.healed_at)}" if f.healed_at is not None
                                   else "never healed") + f": {f.description}"))
    engine, operator, drbd = _other_lanes(report)
    instance_lanes = (_instance_lane(report, n) for n in _instance_names(report))
    instances = _fold(report, [lane for lane in instance_lanes if lane.marks])
    checks = Lane("checks", "each expectation, judged at the end of the drill")
    checks.marks += [_check_mark(c, report_end(report)) for c in report.checks]
    ordered = [faults, engine, operator, *instances, *drbd.values(), checks]
    return [lane for lane in ordered if lane.marks]


def report_end(report: Report) -> float:
    """The lab time the drill ended."""
    return report.started + report.duration


def fault_windows(report: Report) -> list[tuple[float, float]]:
    """(injected, healed or the drill's end) per fault: shaded behind every lane."""
    end = report_end(report)
    return [(f.at, f.healed_at if f.healed_at is not None else max(end, f.at))
            for f in report.faults]


def recovery_window(report: Report) -> tuple[float, float] | None:
    """From the first fault to the last instance verified running (without one, the last
    engine or instance event), padded; None without a fault."""
    if not report.faults:
        return None
    start = min(f.at for f in report.faults)
    ends = [i.time_spent[-1].end for i in report.instances if i.time_spent] or [
        e.end or e.at for e in report.timeline
        if e.lane in ENGINE_LANES or e.lane.startswith("instance:")]
    end = max([start, *ends])
    pad = max(2.0, 0.1 * (end - start))
    return max(report.started, start - pad), min(report_end(report), end + pad)
