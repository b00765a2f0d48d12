"""Allure integration: steps per phase and attachments when recording, nothing otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure_commons
import pytest
from report_samples import TOPOLOGY, sample_report

from stackdrill.checks.result import CheckResult
from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.model import Drill
from stackdrill.drill.runner import execute
from stackdrill.report.allure import (
    allure_active,
    attach_report,
    expected_damage,
    mark_expected_damage,
    write_environment,
)
from stackdrill.report.model import Report

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


class Recorder:
    """Stands in for allure-pytest's listener: records steps and attachments."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []  # (title, "passed"|"failed")
        self.open: dict[Any, str] = {}
        self.attachments: dict[str, Any] = {}

    @allure_commons.hookimpl
    def start_step(self, uuid: Any, title: str, params: Any) -> None:
        self.open[uuid] = title

    @allure_commons.hookimpl
    def stop_step(self, uuid: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.steps.append((self.open.pop(uuid), "failed" if exc_type else "passed"))

    @allure_commons.hookimpl
    def attach_data(self, body: Any, name: str, attachment_type: Any, extension: Any) -> None:
        self.attachments[name] = body


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    allure_commons.plugin_manager.register(rec)
    try:
        yield rec
    finally:
        allure_commons.plugin_manager.unregister(rec)


def test_not_recording_is_a_no_op() -> None:
    if allure_active():
        pytest.skip("this pytest run writes Allure results itself")
    assert attach_report(sample_report(), TOPOLOGY) is False


def test_steps_per_phase_and_attachments(recorder: Recorder) -> None:
    assert attach_report(sample_report(lose_db1=True), TOPOLOGY) is True
    titles = [t for t, _ in recorder.steps]
    for phase in (
        "fault:",
        "detection:",
        "fencing:",
        "planning:",
        "instance:web1:",
        "instance:db1:",
        "checks:",
    ):
        assert any(t.startswith(phase) for t in titles), phase
    status = dict(recorder.steps)
    db1 = next(t for t in titles if t.startswith("instance:db1:"))
    assert status[db1] == "failed"
    assert status[next(t for t in titles if t.startswith("fencing:"))] == "passed"
    assert any(t.startswith("acked_writes: FAILED") for t in titles)
    assert {"topology", "timeline", "report.json"} <= set(recorder.attachments)
    assert any(name.startswith("state before") for name in recorder.attachments)
    assert recorder.attachments["timeline"].startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def split_brain() -> tuple[Report, Drill]:
    """split-brain-2pri on the simulator: it expects the split brain (and gets it)."""
    drill = load_drill(DRILLS / "split-brain-2pri.yaml")
    return judge(execute(drill, backend="sim", lab_name="allure-sb-1")), drill


def test_a_split_brain_the_drill_expects_is_expected_damage(
        split_brain: tuple[Report, Drill]) -> None:
    report, drill = split_brain
    assert any(e.ok is False for e in report.timeline if e.lane == "drbd:r0")
    assert expected_damage(report, drill.spec.expect) == {"drbd:r0": "split brain on DRBD r0"}
    assert expected_damage(report, ()) == {}  # a drill that does not ask for it


def test_a_split_brain_no_check_vouched_for_stays_a_failure(
        split_brain: tuple[Report, Drill]) -> None:
    report, drill = split_brain
    refuted = tuple(c if c.name != "drbd[r0]" else CheckResult.failed(c.name, "bob: Secondary")
                    for c in report.checks)
    failed = report.model_copy(update={"checks": refuted, "verdict": "fail"})
    assert expected_damage(failed, drill.spec.expect) == {}


def test_expected_damage_steps_are_passed_and_say_so(
        recorder: Recorder, split_brain: tuple[Report, Drill]) -> None:
    report, drill = split_brain
    assert attach_report(report, drill.topology, drill.spec.expect) is True
    assert [t for t, status in recorder.steps if status == "failed"] == []
    marked = [t for t, _ in recorder.steps if t.startswith("expected damage: ")]
    assert any("split-brain" in t and "split brain on DRBD r0" in t for t in marked), marked
    recorder.steps.clear()
    attach_report(report, drill.topology)  # without the drill's expectations: red as before
    assert any(status == "failed" and "split-brain" in t for t, status in recorder.steps)


def test_only_a_passed_result_labelled_expected_damage_gets_the_message() -> None:
    from allure_commons.model2 import Label, StatusDetails, TestResult

    damaged = TestResult(status="passed", labels=[Label("expected_damage", "split brain on r0")])
    mark_expected_damage(damaged)
    assert damaged.statusDetails.message.startswith("expected damage: split brain on r0")
    failed = TestResult(status="failed", statusDetails=StatusDetails(message="boom"),
                        labels=[Label("expected_damage", "split brain on r0")])
    mark_expected_damage(failed)
    assert failed.statusDetails.message == "boom"
    plain = TestResult(status="passed", labels=[Label("backend", "sim")])
    mark_expected_damage(plain)
    assert plain.statusDetails is None


def test_environment_values_are_escaped_as_java_properties(tmp_path: Path) -> None:
    """Allure reads environment.properties with java.util.Properties: '=' and ':' in a
    value (a machine string, a URL) must not split it."""
    path = write_environment(tmp_path, {"machine": "Linux 6.1 x86_64", "url": "a=b: c"})
    assert path.read_text() == "machine=Linux 6.1 x86_64\nurl=a\\=b\\: c\n"
