"""The shipped drills for issue 4's remaining workflows, and that their checks can fail.

- unfenceable-host: Nova refuses to evacuate from a host whose compute service is not
  down, and Masakari/Pacemaker fence before recovering; a host that cannot be powered
  off (its BMC unreachable) must block the recovery of its instances, with the reason.
- reserved-host: Masakari's `reserved_host` recovery method sends every instance of a
  failed host to a reserved spare (its compute service disabled until then).
"""

from __future__ import annotations

from pathlib import Path

from stackdrill.checks.expectations import ExpectBlocked, ExpectRecovered
from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.report.model import Report

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def run(name: str) -> Report:
    return judge(execute(load_drill(DRILLS / f"{name}.yaml")))


def checks(report: Report) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in report.checks}


def test_unfenceable_host_blocks_recovery_with_a_clear_message() -> None:
    report = run("unfenceable-host")
    got = checks(report)
    assert report.verdict == "pass", got
    ok, detail = got["blocked"]
    assert ok and "cannot be fenced" in detail and "--assume-fenced" in detail
    assert "IPMI" in detail  # says what the power controller answered


def test_blocked_expectation_fails_when_the_host_was_fenced() -> None:
    """On the plain host-failure drill cmp1 is fenced and recovered: `blocked` must fail."""
    drill = load_drill(DRILLS / "nova-host-failure.yaml")
    spec = drill.spec.model_copy(update={"expect": (
        ExpectBlocked(hosts=("cmp1",), reason_contains="cannot be fenced"),)})
    report = judge(execute(drill.model_copy(update={"spec": spec})))
    ok, detail = checks(report)["blocked"]
    assert not ok
    assert "cmp1: not reported as blocking recovery" in detail
    assert "web1: recovered, expected blocked on cmp1" in detail


def test_reserved_host_takes_every_instance_of_the_failed_host() -> None:
    report = run("reserved-host")
    got = checks(report)
    assert report.verdict == "pass", got
    moved = {i.name: i.host_after for i in report.instances if i.host_before == "cmp1"}
    assert moved == {"web1": "cmp4", "db1": "cmp4", "app1": "cmp4"}


def test_hosts_after_expectation_fails_when_the_spare_is_not_used() -> None:
    """Same drill with the default method (non-reserved hosts first): the spare stays empty,
    and the `hosts_after: [cmp4]` expectation says which instance went where."""
    drill = load_drill(DRILLS / "reserved-host.yaml")
    schedule = tuple(s.model_copy(update={"recover": s.recover.model_copy(
        update={"recovery_method": "auto_priority"})}) if s.recover else s
        for s in drill.spec.schedule)
    spec = drill.spec.model_copy(update={"schedule": schedule, "expect": (
        ExpectRecovered(instances=("web1", "db1", "app1"), hosts_after=("cmp4",)),)})
    report = judge(execute(drill.model_copy(update={"spec": spec})))
    ok, detail = checks(report)["recovered"]
    assert not ok
    assert "expected on cmp4" in detail
