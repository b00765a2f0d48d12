"""Allure integration: steps per phase and attachments when recording, nothing otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import allure_commons
import pytest
from report_samples import TOPOLOGY, sample_report

from stackdrill.report.allure import allure_active, attach_report


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
