"""The timeline's content and where each instance's recovery time went, on real sim runs:
every operation coloured by its own outcome, lost writes where they happened, and phases
that add up to each instance's RTO, detection counted from the fault."""

from __future__ import annotations

import drill_runs
import pytest
from report_samples import sample_report, slices

from stackdrill.drill.load import load_drill
from stackdrill.report import InstanceReport, Report
from stackdrill.report.timeline import AMBER, GREEN, RED, lanes
from stackdrill.report.timeline_svg import view


@pytest.fixture(scope="module")
def nova() -> Report:
    return drill_runs.passing()[0]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return drill_runs.failing(tmp_path_factory.mktemp("drill"))[0]


def test_phases_add_up_to_each_rto_with_detection_from_the_fault(nova: Report) -> None:
    """nova-host-failure: cmp1 dies at 60 s; the engine's own detection phase starts at
    the last heartbeat (before the fault), the report's at the fault."""
    fault_at = nova.faults[0].at
    recovered = [i for i in nova.instances if i.rto_s is not None]
    assert len(recovered) == 3
    for inst in recovered:
        assert inst.rto_s is not None
        phases = [s.phase for s in inst.time_spent]
        assert phases[:3] == ["detection", "fencing", "planning"] and phases[-1] == "verify"
        assert inst.time_spent[0].start == fault_at
        assert sum(s.seconds for s in inst.time_spent) == pytest.approx(inst.rto_s, abs=1e-9)
        assert inst.time_spent[-1].end == pytest.approx(fault_at + inst.rto_s)
    assert min(e.at for e in nova.timeline if e.lane == "detection") < fault_at


def test_the_engine_lane_draws_detection_from_the_fault_not_before_it(nova: Report) -> None:
    """The engine's grace starts at the last heartbeat; its bar must not say the engine
    was detecting a failure before the failure (issue 16); the tip keeps its own start."""
    fault_at = nova.faults[0].at
    engine = next(lane for lane in lanes(nova) if lane.name == "recovery engine")
    detection = [m for m in engine.marks if m.label == "detection"]
    assert detection and all(m.start >= fault_at for m in detection)
    assert all("the engine's grace began at the last heartbeat" in m.tip for m in detection)


def test_phases_add_up_on_a_restart_in_place_too() -> None:
    """instance-crash: no host was lost; detection is the time until the engine acted."""
    report = drill_runs.run(load_drill(drill_runs.DRILLS / "instance-crash.yaml"))
    (inst,) = [i for i in report.instances if i.rto_s is not None]
    assert [s.phase for s in inst.time_spent][:2] == ["detection", "shutdown"]
    assert sum(s.seconds for s in inst.time_spent) == pytest.approx(inst.rto_s, abs=1e-9)


def test_phases_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(ValueError, match=r"add up to 9\.000 s, RTO 12\.0"):
        InstanceReport(name="x", host_before="a", host_after="b", state="recovered", rto_s=12.0,
                       time_spent=slices(("detection", 16.0), ("start", 19.0)))
    with pytest.raises(ValueError, match="not contiguous"):
        InstanceReport(name="x", host_before="a", host_after="b", state="recovered", rto_s=9.0,
                       time_spent=(*slices(("detection", 16.0)),
                                   *slices(("start", 19.0))[0:1]))


def test_lost_writes_are_runs_of_their_own_at_the_moment_they_were_written(strict: Report
                                                                           ) -> None:
    """Protocol A: the writes on the wire when cmp1 died at 60 s are lost; the report
    keeps them apart from the acked ones, at their time, and the counts match the table."""
    fault_at = strict.faults[0].at
    lost = [w for w in strict.writes if w.fate == "lost"]
    assert lost and all(fault_at - 1.0 <= w.start <= fault_at for w in lost)
    for inst in strict.instances:
        mine = [w for w in strict.writes if w.instance == inst.name]
        assert sum(w.count for w in mine if w.fate == "lost") == inst.lost_writes
        assert sum(w.count for w in mine if w.fate in ("acked", "lost")) == inst.acked_writes
    hosts = [w.host for w in strict.writes if w.instance == "inst-a" and w.fate == "acked"]
    assert hosts == ["cmp1", "cmp2"], "one run before the failover, one after"


def test_one_lane_per_process_and_instance(nova: Report) -> None:
    names = [lane.name for lane in lanes(nova)]
    assert names == ["faults", "recovery engine", "web1", "web2", "db1", "db2", "app1", "app2",
                     "checks"]


def test_each_check_and_step_is_coloured_by_its_own_outcome() -> None:
    """A failed drill draws its passed checks green and its steps in their own colour;
    only what failed is red (the never-run check amber)."""
    by_name = {lane.name: lane for lane in lanes(sample_report(lose_db1=True))}
    assert [m.colour for m in by_name["checks"].marks] == [GREEN, GREEN, RED, AMBER]
    assert [m.colour == RED for m in by_name["web1"].marks] == [False, False, False]
    assert [m.colour == RED for m in by_name["db1"].marks] == [False, True]


def test_hundreds_of_instances_fold_into_one_lane_keeping_failures_in_sight(nova: Report
                                                                            ) -> None:
    many = nova.model_copy(update={"writes": tuple(
        w.model_copy(update={"instance": f"vm{i:03}"}) for i in range(200)
        for w in nova.writes[:1])})
    drawn = [lane.name for lane in view(many).lanes]
    # web1, db1, app1 and 200 VMs write: 39 lanes kept, 164 folded into one
    assert "164 more instances" in drawn and len(drawn) == 3 + 40  # + faults, engine, checks
    assert {"web1", "db1", "app1"} <= set(drawn), "the recovered (slowest) ones are kept"
