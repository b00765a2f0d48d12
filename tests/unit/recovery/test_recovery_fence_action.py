"""The fence action (issue 14, engine policy): a fenced host stays off by default
(Masakari's), and with `reboot` (Pacemaker's) is powered on again once nothing is left to
evacuate from it, rejoining through the returning-host path."""

from __future__ import annotations

from pathlib import Path

from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.model import Drill
from stackdrill.drill.runner import execute
from stackdrill.recovery import FenceAction

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def _with_action(name: str, action: FenceAction) -> Drill:
    drill = load_drill(DRILLS / f"{name}.yaml")
    schedule = tuple(
        s.model_copy(update={"recover": s.recover.model_copy(update={"fence_action": action})})
        if s.recover is not None else s for s in drill.spec.schedule)
    return drill.model_copy(update={"spec": drill.spec.model_copy(
        update={"schedule": schedule})})


def test_with_reboot_a_fenced_replica_rejoins_as_an_uptodate_secondary() -> None:
    report = judge(execute(load_drill(DRILLS / "fenced-replica-reboot.yaml")))
    assert report.passed, [(c.name, c.detail) for c in report.failed_checks]
    assert report.state_after["power"]["sto1"] == "on"


def test_by_default_a_fenced_replica_stays_off_and_the_pair_stays_degraded() -> None:
    report = judge(execute(_with_action("fenced-replica-reboot", FenceAction.OFF)))
    assert report.state_after["power"]["sto1"] == "off"
    drbd = next(c for c in report.checks if c.name == "drbd[r0]")
    assert not drbd.ok and "r0@sto1" in drbd.detail


def test_a_compute_host_is_powered_on_only_after_its_guests_left() -> None:
    """cmp1's instances are evacuated first; only then is it powered on, and it comes back
    cleaned of them: nothing runs twice."""
    run = execute(_with_action("nova-host-failure", FenceAction.REBOOT))
    report = judge(run)
    assert report.passed, [(c.name, c.detail) for c in report.failed_checks]
    reboot = [e for e in run.events if e.kind == "fence-reboot" and e.host == "cmp1"]
    assert len(reboot) == 1
    recovered = [e.time for e in run.events if e.kind == "instance-recovered"]
    assert recovered and max(recovered) <= reboot[0].time
    assert report.state_after["power"]["cmp1"] == "on"
