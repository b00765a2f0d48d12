"""The cluster stack started and stopped on one node: a clean leave is not a loss.

dlm_controld fences only nodes that left its CPG with CPG_REASON_NODEDOWN or PROCDOWN
(daemon_cpg.c confchg_cb_daemon); one whose daemon left with cpg_leave (LEAVE) is not
fenced and the lock manager does not wait for it. corosync's leave message lets the
others re-form the ring at once (totemsrp.c memb_leave_message_send)."""

from __future__ import annotations

from typing import Any

import pytest
from test_cluster import build as build_cluster

from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.cluster_stack import StackRefused
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.topology.model import (
    ClusterFencing,
)

NET = "ring"
JOIN_S = 1.0  # the sim's join round (ClusterSim join_s default)


def build(nodes: tuple[str, ...] = ("a", "b"), **spec: Any
          ) -> tuple[Kernel, dict[str, SimHost], ClusterSim]:
    """test_cluster's lab, under manual fencing (two_node for a pair) unless told otherwise."""
    spec = {"two_node": len(nodes) == 2, "fencing": ClusterFencing.MANUAL, **spec}
    kernel, hosts, _underlay, cluster = build_cluster(nodes, **spec)
    return kernel, hosts, cluster


def granted_within(kernel: Kernel, cluster: ClusterSim, host: str, seconds: float) -> bool:
    lock = cluster.dlm_lock(host, "V_vg", "ex")
    kernel.run_until(kernel.now + seconds)
    return bool(lock.triggered and lock.ok)


def test_a_clean_leave_under_manual_fencing_does_not_block_the_dlm() -> None:
    kernel, _hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(JOIN_S + 0.01)  # the leave message: well before the 3 s token timeout
    assert cluster.members("a") == frozenset({"a"})
    assert cluster.fencing_pending("a") == frozenset()
    assert cluster.quorate("a")  # two_node: quorum 1
    assert granted_within(kernel, cluster, "a", 0.1)


def test_a_crash_under_manual_fencing_still_blocks_the_dlm_until_acknowledged() -> None:
    kernel, hosts, cluster = build()
    hosts["b"].crash()
    kernel.run_until(5)
    assert cluster.fencing_pending("a") == frozenset({"b"})
    lock = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(60)
    assert not lock.triggered
    cluster.ack_manual_fence("b")
    kernel.run_until(61)
    assert lock.triggered and lock.ok


def test_a_clean_reboot_leaves_cleanly_and_the_node_rejoins_after_boot() -> None:
    """host_reboot: systemd stops the stack in order, so nobody fences the host."""
    kernel, hosts, cluster = build()
    hosts["b"].reboot()
    kernel.run_until(5)
    assert cluster.members("a") == frozenset({"a"})
    assert cluster.fencing_pending("a") == frozenset()
    assert granted_within(kernel, cluster, "a", 0.1)
    kernel.run_until(10 + JOIN_S + 0.1)  # boot_s, then the join round
    assert cluster.members("a") == cluster.members("b") == frozenset({"a", "b"})


def test_a_crash_after_a_clean_rejoin_is_a_loss_again() -> None:
    kernel, hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(2)
    cluster.start_stack("b")
    kernel.run_until(4)
    hosts["b"].crash()
    kernel.run_until(10)
    assert cluster.fencing_pending("a") == frozenset({"b"})


def test_a_stopped_node_is_no_member_and_its_own_lock_requests_wait() -> None:
    kernel, _hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(5)
    status = cluster.status()["b"]
    assert status.members == () and not status.quorate
    assert not cluster.dlm_usable("b")
    assert not granted_within(kernel, cluster, "b", 30)


def test_a_started_stack_rejoins_after_the_join_time() -> None:
    kernel, _hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(5)
    started = cluster.start_stack("b")
    kernel.run_until(5 + JOIN_S - 0.01)
    assert not started.triggered and "b" not in cluster.members("a")
    kernel.run_until(5 + JOIN_S + 0.01)
    assert started.triggered and started.ok
    assert cluster.members("a") == cluster.members("b") == frozenset({"a", "b"})
    assert cluster.quorate("b")  # wait_for_all (two_node): it saw every expected vote
    assert granted_within(kernel, cluster, "b", 0.1)


def test_a_node_started_alone_waits_for_all_under_two_node() -> None:
    """votequorum(5) wait_for_all, on with two_node: a (re)started node is inquorate
    until it has seen all nodes once."""
    kernel, hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(2)
    hosts["a"].crash()
    kernel.run_until(8)
    cluster.start_stack("b")
    kernel.run_until(8 + JOIN_S + 0.1)
    assert cluster.members("b") == frozenset({"b"})
    assert not cluster.quorate("b")


def test_a_clean_leave_keeps_expected_votes_as_votequorum_does_by_default() -> None:
    """Without allow_downscale no NODE_FLAGS_LEAVING is sent (votequorum_exec_exit_fn):
    expected votes stay 3 and quorum 2; the two left are quorate."""
    kernel, _hosts, cluster = build(("a", "b", "c"))
    cluster.stop_stack("c")
    kernel.run_until(5)
    status = cluster.status()["a"]
    assert (status.votes, status.expected_votes, status.quorum) == (2, 3, 2)
    assert status.quorate and status.fencing_pending == ()
    cluster.stop_stack("b")
    kernel.run_until(10)
    assert not cluster.quorate("a")  # 1 of 3: inquorate, as after a loss


def test_stopping_the_stack_is_refused_while_lockspaces_are_in_use() -> None:
    """dlm_controld ignores SIGTERM with lockspaces (main.c: "shutdown ignored, active
    lockspaces"): the node stays a member."""
    kernel, _hosts, cluster = build()
    with pytest.raises(StackRefused, match="shutdown ignored, active lockspaces"):
        cluster.stop_stack("b", ("lvm_vg",))
    kernel.run_until(5)
    assert cluster.members("a") == frozenset({"a", "b"})


def test_the_stack_cannot_start_on_a_host_that_is_off() -> None:
    kernel, hosts, cluster = build()
    hosts["b"].crash()
    started = cluster.start_stack("b")
    kernel.run_until(1)
    assert started.triggered and not started.ok
    assert isinstance(started.value, StackRefused)


def test_a_stack_stopped_while_it_starts_stays_stopped() -> None:
    kernel, _hosts, cluster = build()
    cluster.stop_stack("b")
    kernel.run_until(2)
    started = cluster.start_stack("b")
    kernel.run_until(2.5)
    cluster.stop_stack("b")
    kernel.run_until(5)
    assert started.triggered and not started.ok
    assert cluster.members("a") == frozenset({"a"}) and cluster.members("b") == frozenset()
    assert cluster.fencing_pending("a") == frozenset()


def test_quorum_lost_by_a_clean_leave_does_not_stop_the_survivors_lockspaces() -> None:
    """dlm_controld waits for quorum only to process a lockspace change (cpg.c
    wait_conditions_done, enable_quorum_lockspace): the leaver stopped its lockspaces
    while the cluster was quorate, so the survivor, now inquorate without two_node, keeps
    granting locks (recorded: cluster-clean-leave-without-two-node, lvchange -aey exit 0).
    A member lost by a crash is a change, and it waits for quorum."""
    kernel, _hosts, cluster = build(two_node=False, fencing=ClusterFencing.NONE)
    cluster.stop_stack("b")
    kernel.run_until(5)
    assert not cluster.quorate("a")
    assert granted_within(kernel, cluster, "a", 0.1)
    kernel, hosts, cluster = build(two_node=False, fencing=ClusterFencing.NONE)
    hosts["b"].crash()
    kernel.run_until(10)
    assert not cluster.quorate("a")
    assert not granted_within(kernel, cluster, "a", 30)
