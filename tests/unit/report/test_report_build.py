"""What the report says about a run: each instance's recovery time counted from the fault
that hit it, the timeline's lanes in time order, where the engine spent its time."""

from __future__ import annotations

from pathlib import Path

from stackdrill.api import Observation
from stackdrill.checks import CheckContext, CheckResult, Evidence
from stackdrill.faults import HostCrash
from stackdrill.recovery import (
    InstanceOutcome,
    InstanceState,
    Phase,
    PhaseTiming,
    RecoveryEvent,
    RecoveryResult,
)
from stackdrill.report.build import DrillRecord, build_report
from stackdrill.topology import load_topology

TOPOLOGY = load_topology(Path(__file__).resolve().parents[3] / "lab" / "topologies"
                         / "drbd-pair-overlay.yaml")


def record() -> DrillRecord:
    """cmp1 crashes at 10 s (cmp2 at 50 s, then cmp1 again at 90 s); the engine detects,
    fences, and verifies inst-a on cmp2 at 70 s."""
    crash_cmp1, crash_cmp2 = HostCrash(host="cmp1"), HostCrash(host="cmp2")
    recovery = RecoveryResult(
        instances=[InstanceOutcome(name="inst-a", host_before="cmp1", host_after="cmp2",
                                   state=InstanceState.RECOVERED, attach_mode="local",
                                   started_at=60.0, verified_at=70.0)],
        phases=[PhaseTiming(Phase.DETECTION, 10.0, 40.0), PhaseTiming(Phase.FENCING, 40.0, 45.0),
                PhaseTiming(Phase.START, 55.0, 60.0, instance="inst-a"),
                PhaseTiming(Phase.VERIFY, 60.0, 70.0, instance="inst-a")],
        journal=[], events=[], failed_hosts=["cmp1"], blocked_hosts={}, started_at=0.0,
        ended_at=120.0)
    observation = Observation(time=120.0, running={"inst-a": ["cmp2"], "inst-b": ["cmp2"]},
                              power={}, drbd={}, lvm=[], quorum={})
    evidence = Evidence(observation=observation, history=(), stored={}, events=(),
                        commands={}, predicted_lost_writes=None)
    context = CheckContext(evidence=evidence, topology=TOPOLOGY, backend="sim",
                           recoveries=(recovery,),
                           fault_log=((10.0, crash_cmp1, None), (50.0, crash_cmp2, None),
                                      (90.0, crash_cmp1, None)))
    events = (RecoveryEvent(time=40.0, kind="host-down", message="cmp1 is down"),
              RecoveryEvent(time=45.0, kind="fence-confirmed", message="cmp1 fenced"),
              RecoveryEvent(time=50.0, kind="instance-verified", message="not on a lane"))
    return DrillRecord(drill="demo", seed=1, context=context, recovery_events=events,
                       state_before={}, ended_at=120.0, trace_sha256="")


def test_rto_runs_from_the_last_fault_on_its_hosts_before_it_was_verified() -> None:
    """inst-a's data lives on cmp1 and cmp2 (DRBD r0): the cmp2 crash at 50 s is the latest
    fault touching it before it was verified at 70 s; the 90 s one came after."""
    report = build_report(record(), [CheckResult.passed("exactly_once", "fine")])
    inst_a, inst_b = report.instances
    assert (inst_a.state, inst_a.host_after, inst_a.rto_s) == ("recovered", "cmp2", 20.0)
    assert (inst_b.state, inst_b.host_after, inst_b.rto_s) == ("running", "cmp2", None)
    assert report.verdict == "pass"
    # the engine's detection and fencing ended before that fault: they are not this RTO's;
    # without a detection phase, detection lasts until the engine's first step began
    assert [(s.phase, s.start, s.end) for s in inst_a.time_spent] == [
        ("detection", 50.0, 55.0), ("start", 55.0, 60.0), ("verify", 60.0, 70.0)]
    assert inst_b.time_spent == ()


def test_timeline_lanes_and_where_the_time_went() -> None:
    report = build_report(record(), [CheckResult.failed("acked_writes", "2 lost")])
    assert [(e.at, e.lane, e.label) for e in report.timeline] == [
        (10.0, "detection", "detection"),
        (10.0, "fault", "host_crash cmp1"),
        (40.0, "detection", "cmp1 is down"),
        (40.0, "fencing", "fencing"),
        (45.0, "fencing", "cmp1 fenced"),
        (50.0, "fault", "host_crash cmp2"),
        (55.0, "instance:inst-a", "start"),
        (60.0, "instance:inst-a", "verify"),
        (90.0, "fault", "host_crash cmp1"),
        (120.0, "check", "acked_writes"),
    ]
    assert report.timeline[-1].ok is False and report.verdict == "fail"
    assert report.phases == {"detection": 30.0, "fencing": 5.0}
    assert report.steps == {"inst-a": {"start": 5.0, "verify": 10.0}}
    assert report.extra == {"writes": 0, "commands": {}, "drbd_events": {},
                            "blocked_hosts": {}}
