"""The JSON report: what `stackdrill run --report` writes and CI archives."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from report_samples import sample_report

from stackdrill.api import DrbdNodeStatus, QuorumStatus
from stackdrill.checks import CheckResult
from stackdrill.report import Report, TimelineEvent, verdict_for


def test_json_round_trip_is_lossless_and_stable() -> None:
    """A report read back is equal to the one written, and writes byte-identically."""
    r = sample_report(lose_db1=True)
    text = r.to_json()
    back = Report.from_json(text)
    assert back == r
    assert back.to_json() == text


def test_json_has_the_fields_issue_3_names() -> None:
    data = json.loads(sample_report().to_json())
    for key in (
        "drill",
        "backend",
        "seed",
        "verdict",
        "trace_sha256",
        "instances",
        "checks",
        "faults",
        "timeline",
    ):
        assert key in data
    inst = data["instances"][0]
    for key in (
        "name",
        "host_before",
        "host_after",
        "state",
        "acked_writes",
        "lost_writes",
        "rto_s",
        "attach_mode",
        "reason",
    ):
        assert key in inst
    assert {"name", "ok", "detail", "ran"} <= set(data["checks"][0])
    assert data["faults"][0]["fault"] == {"kind": "host_crash", "host": "cmp1", "power_back": True}


def test_pass_verdict_with_a_failed_check_is_refused() -> None:
    """The verdict can never claim more than the checks prove."""
    data = json.loads(sample_report(lose_db1=True).to_json())
    assert data["verdict"] == "fail"
    data["verdict"] = "pass"
    with pytest.raises(ValidationError, match="acked_writes"):
        Report.model_validate(data)


def test_nothing_checked_is_not_a_pass() -> None:
    assert verdict_for([]) == "fail"
    assert verdict_for([CheckResult.passed("a", "fine")]) == "pass"
    assert verdict_for([CheckResult.not_run("a", "phase verify not reached")]) == "fail"


def test_report_is_immutable() -> None:
    r = sample_report()
    with pytest.raises(ValidationError):
        r.verdict = "fail"  # type: ignore[misc]


def test_lanes_read_in_operator_order() -> None:
    """fault → detection → fencing → planning → instances by start → checks."""
    assert sample_report().lanes() == [
        "fault",
        "detection",
        "fencing",
        "planning",
        "instance:db1",
        "instance:web1",
        "check",
    ]


def test_timeline_span_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValidationError):
        TimelineEvent(at=5.0, end=4.0, lane="fencing", label="power off")


def test_every_checker_result_fits_in_a_json_report() -> None:
    """Checker findings (counts, seqs, collisions) survive the JSON report unchanged."""
    from stackdrill.api import LvmView, Observation, PowerState, StoredRecord, WriteOp
    from stackdrill.checks import (
        DrbdExpectation,
        acked_writes,
        drbd_state,
        exactly_once,
        lvm_consistency,
    )
    from stackdrill.report import state_summary

    obs = Observation(
        time=50.0,
        running={"vm1": ["cmp2", "cmp1"]},
        power={"cmp1": PowerState.ON},
        drbd={"r0": {"n1": DrbdNodeStatus(role="Primary", disk="UpToDate",
                                          connection="Connected")}},
        lvm=[LvmView("n1", "vg0", 3, {"a": [(0, 4)]}, {"a": [(0, 4)], "b": [(2, 2)]}, True)],
        quorum={"c1": {"n1": QuorumStatus(quorate=True, members=("n1",), votes=1,
                                          expected_votes=1)}},
    )
    ops = [WriteOp("vm1", "v1", 1, 1, "x", 1.0, 1.1, "ok", "cmp1")]
    checks = (
        exactly_once(obs, ["vm1"]),
        acked_writes(ops, {"v1": {1: StoredRecord(1, 1, "y")}}),
        lvm_consistency(obs.lvm),
        drbd_state(obs, [DrbdExpectation(resource="r0", fields={"role": "Secondary"})]),
    )
    assert not any(c.ok for c in checks)
    r = Report(
        drill="d",
        backend="sim",
        seed=1,
        verdict=verdict_for(checks),
        checks=checks,
        state_before=state_summary(obs),
    )
    back = Report.from_json(r.to_json())
    assert back == r
    (view,) = back.state_before["lvm"]
    assert (view["vg"], view["host"], view["active_lvs"]["b"]) == ("vg0", "n1", [[2, 2]])


def test_an_error_report_carries_its_reason_and_no_checks() -> None:
    """The `error` state: an infrastructure error, no verdict about the recovery."""
    from stackdrill.report.model import Report

    report = Report.infrastructure_error(drill="d", backend="libvirt", seed=3, topology="t",
                                         reason="lab not ready: guest cmp1 silent")
    again = Report.from_json(report.to_json())
    assert again == report and again.errored and not again.passed
    assert again.error == "lab not ready: guest cmp1 silent" and again.checks == ()
    with pytest.raises(ValueError, match="needs its reason"):
        Report(drill="d", backend="sim", seed=1, verdict="error")
    with pytest.raises(ValueError, match="only it has one"):
        Report(drill="d", backend="sim", seed=1, verdict="fail", error="x")
