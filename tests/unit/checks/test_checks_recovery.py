"""The engine's answers: what an operator reads in its report after a failover must say
which instances came back where, which could not and why, and which hosts blocked it."""

from __future__ import annotations

from stackdrill.checks import blocked, recovered, unrecoverable
from stackdrill.recovery import InstanceOutcome, InstanceState, RecoveryResult


def result(*outcomes: InstanceOutcome, blocked_hosts: dict[str, str] | None = None
           ) -> RecoveryResult:
    return RecoveryResult(instances=list(outcomes), phases=[], journal=[], events=[],
                          failed_hosts=[], blocked_hosts=blocked_hosts or {},
                          started_at=0.0, ended_at=100.0)


def outcome(name: str, state: InstanceState, before: str = "cmp1", after: str | None = "cmp2",
            reason: str = "", attach_mode: str | None = "local") -> InstanceOutcome:
    return InstanceOutcome(name=name, host_before=before, host_after=after, state=state,
                           reason=reason, attach_mode=attach_mode)


def test_every_check_of_the_engine_never_ran_when_the_engine_never_ran() -> None:
    for r in (recovered([]), unrecoverable([], ("vm1",)), blocked([], ("cmp1",), {})):
        assert (r.ok, r.ran) == (False, False)
        assert r.detail == "never ran: the recovery engine never ran"


def test_recovered_names_each_instance_that_did_not_come_back_and_why() -> None:
    r = recovered([result(outcome("vm1", InstanceState.RECOVERED),
                          outcome("vm2", InstanceState.FAILED, reason="attach timed out"))])
    assert not r.ok
    assert r.detail == "vm2: failed (attach timed out)"


def test_recovered_on_a_host_the_drill_did_not_allow_fails() -> None:
    r = recovered([result(outcome("vm1", InstanceState.RECOVERED, after="cmp3"))],
                  hosts_after=("spare1",))
    assert r.detail == "vm1: recovered on cmp3, expected on spare1"


def test_recovered_all_fails_when_nothing_needed_the_engine() -> None:
    """A drill whose fault never made anything fail must not pass as 'recovered'."""
    r = recovered([result(outcome("vm1", InstanceState.RUNNING, after="cmp1"))])
    assert not r.ok
    assert "never needed the engine" in r.detail


def test_a_recovery_that_failed_is_not_said_to_have_needed_no_engine() -> None:
    """vm-nova-host-failure's first run on guests: both evacuations failed on an export
    error, and the detail also claimed the failure never needed the engine."""
    r = recovered([result(outcome("vm1", InstanceState.FAILED, reason="export failed"),
                          outcome("vm2", InstanceState.RUNNING, after="cmp2"))])
    assert not r.ok
    assert r.detail == "vm1: failed (export failed)"


def test_recovered_counts_moves_restarts_in_place_and_resumes() -> None:
    r = recovered([result(outcome("vm1", InstanceState.RECOVERED),
                          outcome("vm2", InstanceState.RECOVERED, after="cmp1"),
                          outcome("vm3", InstanceState.RESUMED, after="cmp1"))])
    assert r.ok
    assert r.detail == ("3 instance(s) fine: 1 recovered on another host, 1 restarted in "
                        "place on a new volume path, 1 resumed")


def test_unrecoverable_needs_the_state_and_the_reason() -> None:
    run = [result(outcome("vm1", InstanceState.UNRECOVERABLE, after=None,
                          reason="no host with a replica of vol1"),
                  outcome("vm2", InstanceState.RECOVERED))]
    assert unrecoverable(run, ("vm1",), "replica").ok
    wrong_reason = unrecoverable(run, ("vm1",), "capacity")
    assert wrong_reason.detail == ("vm1: reason 'no host with a replica of vol1' does not say "
                                   "'capacity'")
    assert unrecoverable(run, ("vm2",)).detail == \
        "vm2: recovered, expected to be reported unrecoverable"


def test_blocked_host_must_be_named_and_its_instances_left_alone() -> None:
    """cmp1 could not be fenced: its instances must not start anywhere else."""
    run = [result(outcome("vm1", InstanceState.BLOCKED, after=None),
                  outcome("vm2", InstanceState.RECOVERED),
                  blocked_hosts={"cmp1": "power controller unreachable"})]
    r = blocked(run, ("cmp1",), {"vm1": "cmp1", "vm2": "cmp1", "vm3": "cmp3"}, "power")
    assert not r.ok
    assert r.detail == "vm2: recovered, expected blocked on cmp1"
    ok = blocked(run, ("cmp1",), {"vm1": "cmp1", "vm3": "cmp3"}, "power")
    assert ok.ok and ok.detail == "recovery blocked: cmp1: power controller unreachable"
