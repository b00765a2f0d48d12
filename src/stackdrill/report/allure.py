"""Put a drill report into Allure when allure-pytest is recording; do nothing otherwise.

`pytest scenarios/ --alluredir DIR` then shows, per scenario, a step per phase (fault,
detection, fencing, planning, each instance's recovery, checks) with the lab-time
events inside it, failed steps where an event or check failed, and the attachments:
topology and timeline pictures, DRBD/LVM state before and after, the JSON report.
Allure stamps steps with wall-clock time; the lab times are in the step titles.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from stackdrill.report.model import Report, TimelineEvent
from stackdrill.topology.model import Topology

log = logging.getLogger(__name__)


class _MarkStepFailed(AssertionError):
    """Raised inside a step only to mark it failed in Allure; caught right away."""


def allure_active() -> bool:
    """True when allure-pytest is writing results (`--alluredir` given) in this process."""
    try:
        import allure_commons
    except ImportError:
        return False
    return bool(allure_commons.plugin_manager.hook.attach_data.get_hookimpls())


def _step(title: str, failed: bool, body: Callable[[], None] | None = None) -> None:
    import allure

    try:
        with allure.step(title):
            if body is not None:
                body()
            if failed:
                raise _MarkStepFailed(title)
    except _MarkStepFailed:
        pass


def _span(events: list[TimelineEvent]) -> str:
    start = min(e.at for e in events)
    end = max((e.end if e.end is not None else e.at) for e in events)
    return f"t={start:.1f}s → {end:.1f}s ({end - start:.1f}s)"


def _event_title(e: TimelineEvent) -> str:
    when = f"t={e.at:.1f}s" + (f"–{e.end:.1f}s" if e.end is not None else "")
    return f"{when} {e.label}"


def _phase_steps(report: Report) -> None:
    lanes: dict[str, list[TimelineEvent]] = {}
    for e in sorted(report.timeline, key=lambda e: (e.at, e.label)):
        lanes.setdefault(e.lane, []).append(e)
    for lane in report.lanes():
        if lane == "check":
            continue
        events = lanes[lane]
        secs = (
            report.steps.get(lane.removeprefix("instance:"))
            if lane.startswith("instance:")
            else None
        )
        title = f"{lane}: {_span(events)}"
        if secs:
            title += " — " + ", ".join(f"{k} {v:.1f}s" for k, v in secs.items())

        def body(events: list[TimelineEvent] = events) -> None:
            for e in events:
                _step(_event_title(e), e.ok is False)

        _step(title, any(e.ok is False for e in events), body)

    def checks() -> None:
        for c in report.checks:
            state = "ok" if c.ok else ("NEVER RAN" if not c.ran else "FAILED")
            _step(f"{c.name}: {state} — {c.detail}", not c.ok)

    _step(
        f"checks: {len(report.checks) - len(report.failed_checks)}/{len(report.checks)} ok",
        not report.passed,
        checks,
    )


def _attach_png(name: str, draw: Callable[[], bytes]) -> None:
    import allure

    try:
        allure.attach(draw(), name=name, attachment_type=allure.attachment_type.PNG)
    except Exception as exc:  # a missing `dot` must not hide the rest of the report
        log.warning("cannot draw %s: %s", name, exc)
        allure.attach(
            f"{name} unavailable: {exc}", name=name, attachment_type=allure.attachment_type.TEXT
        )


def _attach_json(name: str, value: Any) -> None:
    import allure

    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, indent=2, sort_keys=True, default=str)
    )
    allure.attach(text, name=name, attachment_type=allure.attachment_type.JSON)


def attach_report(report: Report, topology: Topology | None = None) -> bool:
    """Record the report as Allure steps and attachments; False (and nothing done) when
    Allure is not recording."""
    if not allure_active():
        return False
    if report.errored:  # no verdict: the reason, not an empty list of checks
        _step(f"infrastructure error (no verdict): {report.error}", True)
        _attach_json("report.json", report.to_json())
        return True
    from stackdrill.report.pictures import timeline_png, topology_png

    _phase_steps(report)
    if topology is not None:
        _attach_png("topology", lambda: topology_png(topology, report))
    _attach_png("timeline", lambda: timeline_png(report))
    _attach_json("state before (DRBD/LVM/quorum)", report.state_before)
    _attach_json("state after (DRBD/LVM/quorum)", report.state_after)
    _attach_json("report.json", report.to_json())
    return True
