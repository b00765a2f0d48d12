"""The checks a drill of an instance restarted where it died relies on: `never_stopped`
(bystanders never stopped, from the lab's own guest events), `recovered` with
`state: restarted` and `hosts_after` (the engine says it restarted it, there), and
`exactly_once` with `placed` (the lab runs it on that host at the end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.api import GuestStarted, GuestStopped, Observation, PowerState, Traced
from stackdrill.checks import CheckContext, recovered
from stackdrill.checks.evidence import Evidence
from stackdrill.checks.expectations import ExpectExactlyOnce, ExpectNeverStopped
from stackdrill.checks.fencing import never_stopped
from stackdrill.checks.table import check
from stackdrill.drill import load_drill
from stackdrill.errors import DrillError
from stackdrill.recovery import InstanceOutcome, InstanceState, RecoveryResult
from stackdrill.topology import load_topology

PAIR = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "drbd-pair.yaml"


def result(*outcomes: InstanceOutcome) -> RecoveryResult:
    return RecoveryResult(instances=list(outcomes), phases=[], journal=[], events=[],
                          failed_hosts=[], blocked_hosts={}, started_at=0.0, ended_at=100.0)


def restarted(name: str, host: str = "cmp1") -> InstanceOutcome:
    return InstanceOutcome(name=name, host_before="cmp1", host_after=host,
                           state=InstanceState.RESTARTED, restarts=1)


def test_never_stopped_names_a_bystander_that_stopped() -> None:
    events = [Traced(30.0, GuestStopped("cmp1", "inst-a", 1, "killed")),
              Traced(31.0, GuestStarted("cmp1", "inst-a", 2)),
              Traced(40.0, GuestStopped("cmp1", "inst-b", 1, "destroyed"))]
    assert never_stopped(events[:2], ["inst-b"]).ok
    r = never_stopped(events, ["inst-b"])
    assert (r.ok, r.detail) == (False, "inst-b stopped on cmp1 at t=40s")


def test_recovered_demands_the_state_named_and_the_host_of_a_restart() -> None:
    assert recovered([result(restarted("inst-a"))], ("inst-a",), hosts_after=("cmp1",),
                     state="restarted").ok
    running = InstanceOutcome(name="inst-a", host_before="cmp1", host_after="cmp1",
                              state=InstanceState.RUNNING)
    r = recovered([result(running)], ("inst-a",), state="restarted")
    assert (r.ok, r.detail) == (False, "inst-a: running, expected restarted")
    r = recovered([result(restarted("inst-a", host="cmp2"))], ("inst-a",), hosts_after=("cmp1",))
    assert (r.ok, r.detail) == (False, "inst-a: restarted on cmp2, expected on cmp1")


def test_a_restart_alone_is_something_the_engine_recovered() -> None:
    r = recovered([result(restarted("inst-a"))])
    assert (r.ok, r.detail) == (True, "1 instance(s) fine: inst-a restarted on cmp1 after its "
                                      "process died (1x)")  # no zero counts


def test_exactly_once_placed_fails_an_instance_running_on_another_host() -> None:
    """The drill's `placed:` reaches the checker: the lab's ground truth, not the engine's."""
    seen = Observation(time=100.0, running={"inst-a": ["cmp2"], "inst-b": ["cmp1"]},
                       power={"cmp1": PowerState.ON, "cmp2": PowerState.ON}, drbd={}, lvm=[],
                       quorum={})
    evidence = Evidence(seen, (), {}, (), {}, None)
    ctx = CheckContext(evidence, load_topology(PAIR), "sim")
    assert check(ExpectExactlyOnce(), ctx).ok
    r = check(ExpectExactlyOnce(placed={"inst-a": "cmp1"}), ctx)
    assert not r.ok and r.data["misplaced"] == {"inst-a": "cmp1"}
    assert check(ExpectNeverStopped(instances=("inst-b",)), ctx).ok


def test_placed_names_instances_and_hosts_of_the_topology(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(f"name: d\ntopology: {PAIR}\nduration_s: 100\nexpect:\n"
                    "  - {check: exactly_once, placed: {nope: cmp1, inst-a: cmp9}}\n"
                    "  - {check: never_stopped, instances: [ghost]}\n")
    with pytest.raises(DrillError) as info:
        load_drill(path)
    assert [line.removeprefix(f"{path}: ") for line in info.value.render().splitlines()] == [
        "expect[0].placed.nope: unknown instance 'nope'",
        "expect[0].placed.inst-a: unknown host 'cmp9'",
        "expect[1].instances[0]: unknown instance 'ghost'"]
