"""Put a drill report into Allure when allure-pytest is recording; do nothing otherwise.

`pytest scenarios/ --alluredir DIR` then shows, per scenario, a step per phase (fault,
detection, fencing, planning, each instance's recovery, checks) with the lab-time
events inside it, failed steps where an event or check failed, and the attachments:
topology and timeline pictures, DRBD/LVM state before and after, the JSON report.
Allure stamps steps with wall-clock time; the lab times are in the step titles.

Each run is also named the way CI groups and reproduces it: backend, seed and trace as
parameters (the trace is left out of Allure's history id: it changes with the code),
and labels. Damage the drill asks for (a split brain it expects and got) is a passed
step marked "expected damage", never a red step inside a passed test; such a test
carries an `expected_damage` label and, through `ExpectedDamageMessage`, a status
message that `categories.json` (written by the pytest plugin with `environment.properties`)
files under its own category, apart from infrastructure errors and failed checks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackdrill.checks.expectations import Expectation, ExpectDrbd
from stackdrill.report.model import Report, TimelineEvent
from stackdrill.topology.model import Topology

log = logging.getLogger(__name__)

# Damage a drill can ask for: DRBD's split brain and the refused handshake that follows it.
SPLIT_BRAIN_KINDS = ("split-brain", "handshake-refused")
EXPECTED_DAMAGE_LABEL = "expected_damage"
EXPECTED_DAMAGE_MESSAGE = "expected damage: "
INFRASTRUCTURE_TRACE = "infrastructure error: the lab could not be brought up"

# Allure's categories (https://allurereport.org/docs/categories/): a result is filed under
# every category whose status, message and trace it matches (under none of them: Allure's
# own "Product defects" / "Test defects"). Infrastructure errors are "broken" (not an
# assertion) and carry the plugin's INFRASTRUCTURE_TRACE; a failed check is an assertion,
# "failed"; expected damage is a passed test with EXPECTED_DAMAGE_MESSAGE. Allure 2 matches
# the whole text (Java, DOTALL); `[\s\S]` spans lines in any regex dialect without flags.
CATEGORIES: tuple[dict[str, Any], ...] = (
    {"name": "Infrastructure errors (lab not ready: no verdict about the recovery)",
     "matchedStatuses": ["broken"],
     "traceRegex": rf"[\s\S]*{INFRASTRUCTURE_TRACE}[\s\S]*"},
    {"name": "Failed checks (the recovery did not do its job)",
     "matchedStatuses": ["failed"]},
    {"name": "Expected damage (the drill asks for it and every check held)",
     "matchedStatuses": ["passed"],
     "messageRegex": rf"{EXPECTED_DAMAGE_MESSAGE}[\s\S]*"},
)


class _MarkStepFailed(AssertionError):
    """Raised inside a step only to mark it failed in Allure; caught right away."""


@dataclass(frozen=True)
class RunLabels:
    """What names one lab run in Allure and JUnit: enough to group it and to reproduce it."""

    backend: str
    seed: int
    drill: str = ""


def allure_active() -> bool:
    """True when allure-pytest is writing results (`--alluredir` given) in this process."""
    try:
        import allure_commons
    except ImportError:
        return False
    return bool(allure_commons.plugin_manager.hook.attach_data.get_hookimpls())


def label_run(run: RunLabels, *, first: bool = True) -> None:
    """Backend and seed as parameters (part of the history id: another backend or seed is
    another case) and as labels to filter by. A second run in one test (the simulator
    beside a real backend) adds labels, and never overwrites the first run's parameters."""
    if not allure_active():
        return
    import allure

    if first:
        allure.dynamic.parameter("backend", run.backend)
        allure.dynamic.parameter("seed", run.seed)
    _label("backend", run.backend)
    _label("tag", run.backend)
    if run.drill:
        _label("drill", run.drill)


def label_trace(backend: str, trace_sha256: str, *, first: bool = True) -> None:
    """The run's trace hash, a parameter left out of Allure's history id (it changes with
    the code; the case does not); a second run's is named by its backend."""
    if not allure_active() or not trace_sha256:
        return
    import allure

    allure.dynamic.parameter("trace" if first else f"trace ({backend})", trace_sha256,
                             excluded=True)
    _label("trace_sha256", trace_sha256)


def _label(name: str, *values: str) -> None:
    """allure.dynamic.label (tag is the label "tag"), on the test being recorded."""
    import allure

    allure.dynamic.label(name, *values)  # type: ignore[no-untyped-call]


def expected_damage(report: Report, expect: Iterable[Expectation]) -> dict[str, str]:
    """Lane -> what the drill asked for, for damage the drill expected and got: a split
    brain on DRBD resource R (`{check: drbd, resource: R, split_brain: true}`) whose
    `drbd[R]` check held. Any other red event, or a split brain no check vouched for,
    stays a failure."""
    wanted = {f"drbd:{e.resource}": e.resource
              for e in expect if isinstance(e, ExpectDrbd) and e.split_brain}
    seen = {e.lane for e in report.timeline if e.lane in wanted and _is_damage(e)}
    return {lane: f"split brain on DRBD {resource}" for lane, resource in wanted.items()
            if lane in seen and _held(report, f"drbd[{resource}]")}


def _held(report: Report, check: str) -> bool:
    """The check (and its repeats, `name#2`, ...) ran and held."""
    results = [c for c in report.checks if c.name == check or c.name.startswith(check + "#")]
    return bool(results) and all(c.ok for c in results)


def _is_damage(event: TimelineEvent) -> bool:
    return event.ok is False and event.label.split(" ", 1)[0] in SPLIT_BRAIN_KINDS


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


def _lane_steps(lane: str, events: list[TimelineEvent], title: str, expected: str | None
                ) -> None:
    """One lane's step; an event that is damage the drill expected is a passed step that
    says so, and does not turn its lane red."""

    def is_expected(e: TimelineEvent) -> bool:
        return expected is not None and _is_damage(e)

    def body() -> None:
        for e in events:
            if is_expected(e):
                _step(f"{EXPECTED_DAMAGE_MESSAGE}{_event_title(e)} (the drill expects "
                      f"{expected})", False)
            else:
                _step(_event_title(e), e.ok is False)

    if expected is not None:
        title += f" — expected damage: {expected}"
    _step(title, any(e.ok is False and not is_expected(e) for e in events), body)


def _phase_steps(report: Report, expected: Mapping[str, str]) -> None:
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
        _lane_steps(lane, events, title, expected.get(lane))

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


def attach_report(report: Report, topology: Topology | None = None,
                  expect: Iterable[Expectation] = ()) -> bool:
    """Record the report as Allure steps and attachments; False (and nothing done) when
    Allure is not recording. `expect` (the drill's expectations) tells damage the drill
    asked for from damage it did not."""
    if not allure_active():
        return False
    if report.errored:  # no verdict: the reason, not an empty list of checks
        _step(f"infrastructure error (no verdict): {report.error}", True)
        _attach_json("report.json", report.to_json())
        return True
    from stackdrill.report.pictures import timeline_png, topology_png

    expected = expected_damage(report, expect)
    if expected:
        _label(EXPECTED_DAMAGE_LABEL, *sorted(expected.values()))
    _phase_steps(report, expected)
    if topology is not None:
        _attach_png("topology", lambda: topology_png(topology, report))
    _attach_png("timeline", lambda: timeline_png(report))
    _attach_json("state before (DRBD/LVM/quorum)", report.state_before)
    _attach_json("state after (DRBD/LVM/quorum)", report.state_after)
    _attach_json("report.json", report.to_json())
    return True


def mark_expected_damage(result: Any) -> None:
    """A passed Allure result labelled `expected_damage` gets a status message saying so
    (allure-pytest gives passed tests none): the one thing Allure's categories can match."""
    if result.status != "passed" or result.statusDetails is not None:
        return
    damage = [lb.value for lb in result.labels if lb.name == EXPECTED_DAMAGE_LABEL]
    if damage:
        from allure_commons.model2 import StatusDetails

        result.statusDetails = StatusDetails(
            message=f"{EXPECTED_DAMAGE_MESSAGE}{', '.join(damage)} (the drill asks for it "
                    "and every check held)")


def expected_damage_plugin() -> object:
    """An allure-commons plugin that applies `mark_expected_damage` to each result before
    allure's file logger writes it; the pytest plugin registers it while results are
    written. Built here so that importing this module never needs allure."""
    import allure_commons

    class ExpectedDamageMessage:
        @allure_commons.hookimpl(tryfirst=True)
        def report_result(self, result: Any) -> None:
            mark_expected_damage(result)

    return ExpectedDamageMessage()


def write_categories(alluredir: Path) -> Path:
    """`categories.json`: infrastructure errors, failed checks and expected damage apart."""
    path = alluredir / "categories.json"
    path.write_text(json.dumps(list(CATEGORIES), indent=2) + "\n")
    return path


def write_environment(alluredir: Path, values: Mapping[str, str]) -> Path:
    """`environment.properties` (Java properties: the Environment widget's format)."""
    path = alluredir / "environment.properties"
    path.write_text("".join(f"{_escape(k)}={_escape(v)}\n" for k, v in values.items()))
    return path


def _escape(text: str) -> str:
    out = (text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=")
           .replace(":", "\\:"))
    return "\\" + out if out[:1] in ("#", "!", " ") else out
