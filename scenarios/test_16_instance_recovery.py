"""Scenario 16: one instance dies on a host that stays up, and the engine restarts it there.

Pacemaker CTS's ResourceRecover (cts/lab/CTStests.py): it fails one resource by hand
("crm_resource --fail") while its node stays in the cluster, then asserts that the
resource's monitor operation fails ("(monitor|probe) on <node> failed"); that the cluster
recovers it ("Recover <resource>": stop, then start) on the same node, so it is never
active twice; and that its failcount on that node went up by one. Past its
migration-threshold the cluster stops recovering it there.

Here the failure is a SIGKILL of the instance's process (its qemu, or the workload
process that stands for it) and the monitor is the engine's instance monitor. What a user
reads from the report: the instance is `restarted`, on the host it died on, with one
restart counted; the lab runs it exactly once; no other instance stopped; nothing was
fenced or moved; no acknowledged write was lost; its RTO runs from the kill.
"""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, instance

from stackdrill.report.model import Report


def _restarted_in_place(report: Report, name: str, host: str) -> None:
    """What ResourceRecover asserts, as the report shows it."""
    assert_passed(report)
    inst = instance(report, name)
    assert (inst.state, inst.host_before, inst.host_after) == ("restarted", host, host), inst
    assert inst.restarts == 1, f"{name}: failcount {inst.restarts}, expected 1"
    assert inst.rto_s is not None and 0 < inst.rto_s < 60, f"{name}: RTO {inst.rto_s}"
    assert inst.lost_writes == 0 and inst.acked_writes > 0, inst
    others = [i for i in report.instances if i.name != name]
    assert others and all(i.state == "running" and i.restarts == 0 for i in others), others
    assert check(report, "never_stopped").ok and check(report, "not_evacuated").ok
    assert check(report, "exactly_once").data["misplaced"] == {}
    assert all(power == "on" for power in report.state_after["power"].values())
    killed = [f for f in report.faults if f.kind == "instance_crash"]
    assert [f.fault["instance"] for f in killed] == [name]


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer
def test_an_instance_killed_on_a_host_that_stays_up_is_restarted_there_once(run_drill):
    """drbd-pair: inst-a's process is killed on cmp1 at 30 s; inst-b on the same host runs
    on. The engine restarts inst-a on cmp1 with its local DRBD-backed volume, once."""
    report = run_drill(drill("instance-crash"))
    _restarted_in_place(report, "inst-a", "cmp1")
    assert instance(report, "inst-a").attach_mode == "local"
    assert_sim_agrees(report, run_drill)


@pytest.mark.backends("sim", "netns")
def test_an_instance_killed_on_a_host_that_stays_up_is_restarted_over_its_network_volume(
        run_drill):
    """nova-nbd on real namespaces: db1's workload process gets SIGKILL on cmp1 at 30 s;
    web1 and app1 on cmp1 and every other instance run on. db1 comes back on cmp1 and
    reconnects to its volume over NBD."""
    report = run_drill(drill("net-instance-crash"))
    _restarted_in_place(report, "db1", "cmp1")
    assert instance(report, "db1").attach_mode == "remote"


@pytest.mark.backends("sim", "libvirt")
def test_an_instance_that_keeps_dying_is_left_for_the_operator_after_three_restarts(
        run_drill):
    """Pacemaker's migration-threshold: after three restarts within the window the fourth
    death is not recovered again; the report says so, with the count, and nothing else
    (fencing, evacuation, the other instance) was touched."""
    report = run_drill(drill("instance-crash-loop"))
    assert_passed(report)
    inst = instance(report, "inst-a")
    assert (inst.state, inst.host_after, inst.restarts) == ("failed", None, 3), inst
    assert "after 3 restart(s)" in inst.reason and "operator" in inst.reason, inst.reason
    assert instance(report, "inst-b").state == "running"
    assert check(report, "acked_writes").data["lost"] == 0
