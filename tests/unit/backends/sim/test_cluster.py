"""corosync membership, votequorum, fencing and the DLM in the simulated cluster stack."""

from __future__ import annotations

from typing import Any

import pytest

from stackdrill.api import PowerState
from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.cluster_dlm import LockConflict
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology.model import (
    ClusterFencing,
    ClusterSpec,
    Host,
    Network,
    NetworkPurpose,
    Role,
    Topology,
)

NET = "ring"


def build(nodes: tuple[str, ...] = ("a", "b"), seed: int = 1, off: tuple[str, ...] = (),
          **spec: Any) -> tuple[Kernel, dict[str, SimHost], Underlay, ClusterSim]:
    kernel = Kernel(seed)
    hosts_spec = tuple(Host(name=n, roles=(Role.COMPUTE,), boot_s=10.0) for n in nodes)
    net = Network(name=NET, purposes=(NetworkPurpose.CLUSTER,), cidr="10.0.0.0/24",
                  addresses={n: f"10.0.0.{i + 1}" for i, n in enumerate(nodes)})
    topo = Topology(name="t", hosts=hosts_spec, networks=(net,))
    hosts = {h.name: SimHost(kernel, h) for h in hosts_spec}
    for name in off:
        hosts[name].power = PowerState.OFF
    underlay = Underlay(kernel, topo, hosts)
    cluster = ClusterSim(kernel, ClusterSpec(name="c", nodes=nodes, network=NET, **spec),
                         hosts, underlay, power_off=None)
    return kernel, hosts, underlay, cluster


def test_membership_is_every_up_node_that_reaches_the_others() -> None:
    """corosync: the membership is the set of nodes exchanging the totem token."""
    _k, _h, _u, cluster = build(("a", "b", "c"))
    assert cluster.members("a") == cluster.members("c") == frozenset({"a", "b", "c"})
    assert all(cluster.quorate(n) for n in "abc")


def test_a_lost_node_is_noticed_only_after_the_token_timeout() -> None:
    """corosync.conf(5) `token`: a node is declared lost when the token has not come back
    within the token timeout; until then the old membership stands."""
    kernel, hosts, _u, cluster = build(("a", "b", "c"), token_ms=3000, fencing=ClusterFencing.NONE)
    hosts["c"].crash()
    kernel.run_until(2.9)
    assert "c" in cluster.members("a")
    kernel.run_until(3.1)
    assert cluster.members("a") == frozenset({"a", "b"})


def test_three_nodes_partition_majority_keeps_quorum_minority_loses_it() -> None:
    """votequorum(5)/exec/votequorum.c: quorum = expected_votes/2 + 1 = 2 of 3; each
    partition counts its own votes."""
    kernel, _h, underlay, cluster = build(("a", "b", "c"), fencing=ClusterFencing.NONE)
    underlay.partition((("a", "b"), ("c",)), None)
    kernel.run_until(5)
    status = cluster.status()
    assert status["a"].quorate and status["b"].quorate
    assert not status["c"].quorate
    assert status["c"].members == ("c",) and status["c"].quorum == 2
    assert status["a"].votes == 2 and status["a"].expected_votes == 3


def test_without_two_node_losing_one_of_two_nodes_loses_quorum() -> None:
    """votequorum(5): with two one-vote nodes the simple majority is 2, so 'both nodes
    would always have to be alive for the cluster to be quorate'."""
    kernel, hosts, _u, cluster = build(fencing=ClusterFencing.NONE)
    assert cluster.quorate("a")
    hosts["b"].crash()
    kernel.run_until(5)
    assert not cluster.quorate("a")


def test_two_node_keeps_quorum_with_one_of_two_votes() -> None:
    """votequorum(5) two_node: 'quorum is set artificially to 1'."""
    kernel, hosts, _u, cluster = build(two_node=True, fencing=ClusterFencing.NONE)
    hosts["b"].crash()
    kernel.run_until(5)
    assert cluster.members("a") == frozenset({"a"})
    assert cluster.quorate("a")
    assert cluster.status()["a"].quorum == 1


def test_two_node_implies_wait_for_all_at_start() -> None:
    """votequorum(5): two_node enables wait_for_all; a node is quorate for the first time
    only after all nodes were visible at least once."""
    kernel, hosts, _u, cluster = build(two_node=True, off=("b",), fencing=ClusterFencing.NONE)
    assert not cluster.quorate("a")
    assert cluster.status()["a"].wait_for_all
    hosts["b"].power_on()
    kernel.run_until(12)  # boot 10 s + join
    assert cluster.quorate("a") and cluster.quorate("b")
    hosts["b"].crash()
    kernel.run_until(20)
    assert cluster.quorate("a"), "after WFA was satisfied once, one vote is enough"


def test_wait_for_all_can_be_switched_off_explicitly() -> None:
    """votequorum(5): 'It is still possible to override wait_for_all by explicitly setting it
    to 0.'"""
    _k, _h, _u, cluster = build(two_node=True, wait_for_all=False, off=("b",))
    assert cluster.quorate("a")


def test_dlm_waits_while_inquorate() -> None:
    """lvmlockd(8) / dlm_controld(8): lockspace operations need quorum; requests wait."""
    kernel, hosts, _u, cluster = build(("a", "b", "c"), fencing=ClusterFencing.NONE)
    hosts["b"].crash()
    hosts["c"].crash()
    kernel.run_until(5)
    req = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(10)
    assert not req.triggered
    hosts["b"].power_on()  # boots in 10 s, joins 1 s later: 2 of 3 votes
    kernel.run_until(22)
    assert req.triggered and req.ok


def test_power_fencing_blocks_the_dlm_until_the_victim_is_off() -> None:
    """dlm_controld(8) enable_fencing / lvmlockd(8) 'dlm/corosync failure': after a member
    is lost, lock requests on the others wait until it has been fenced."""
    kernel, hosts, underlay, cluster = build(("a", "b", "c"), fencing=ClusterFencing.POWER)
    underlay.set_link("c", NET, False)  # c is alive but cut off
    kernel.run_until(3.5)
    assert cluster.fencing_pending("a") == frozenset({"c"})
    req = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(4.0)
    assert not req.triggered
    kernel.run_until(10)
    assert hosts["c"].power is PowerState.OFF
    assert req.triggered and req.ok
    assert cluster.status()["a"].fencing_pending == ()


def test_manual_fencing_waits_for_fence_ack_manual() -> None:
    """fence_manual (the seed's cman setup): nothing proceeds until an operator runs
    fence_ack_manual for the lost node; the node is not powered off by the cluster."""
    kernel, hosts, _u, cluster = build(two_node=True, fencing=ClusterFencing.MANUAL)
    hosts["b"].hang()
    kernel.run_until(60)
    req = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(120)
    assert not req.triggered
    assert hosts["b"].power is PowerState.HUNG
    cluster.ack_manual_fence("b")
    kernel.run_until(121)
    assert req.triggered and req.ok


def test_an_ack_for_a_node_powered_off_covers_its_later_loss_too() -> None:
    """A hung node thaws and rejoins (a stateful merge), then is powered off and acked.
    dlm_controld clears the wait it had, and when the membership then loses the node it
    needs fencing again (confchg_cb_daemon): the operator who saw it off acks that wait
    too, so the DLM does not block for good (random seeds 2343, 2456, 3724)."""
    kernel, hosts, _u, cluster = build(two_node=True, fencing=ClusterFencing.MANUAL)
    hosts["b"].hang()
    kernel.run_until(30)
    assert cluster.fencing_pending("a") == frozenset({"b"})
    hosts["b"].thaw()
    kernel.run_until(32)
    assert cluster.members("a") == frozenset({"a", "b"})
    hosts["b"].power_off()
    cluster.ack_manual_fence("b")  # the power driver confirmed it off
    kernel.run_until(40)
    assert cluster.members("a") == frozenset({"a"})
    req = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(41)
    assert cluster.fencing_pending("a") == frozenset()
    assert req.triggered and req.ok


def test_an_ack_stops_counting_once_the_node_is_powered_on() -> None:
    """The operator's word was about the node being off: once it boots and rejoins, a
    later loss waits for a new acknowledgement."""
    kernel, hosts, _u, cluster = build(two_node=True, fencing=ClusterFencing.MANUAL)
    hosts["b"].power_off()
    cluster.ack_manual_fence("b")
    kernel.run_until(10)
    hosts["b"].power_on()
    kernel.run_until(30)
    assert cluster.members("a") == frozenset({"a", "b"})
    hosts["b"].hang()
    kernel.run_until(60)
    req = cluster.dlm_lock("a", "V_vg", "ex")
    kernel.run_until(90)
    assert cluster.fencing_pending("a") == frozenset({"b"})
    assert not req.triggered


def test_two_node_partition_fence_race_has_exactly_one_deterministic_winner() -> None:
    """votequorum.c: with two_node 'Only one of the two should live past fencing (as both
    nodes try to fence each other in split-brain)'. The model gives each node a static
    fence delay by node id (pcmk_delay_base style): the lower node id wins."""
    outcomes = []
    for seed in (1, 2, 3):
        kernel, hosts, underlay, cluster = build(two_node=True, seed=seed)
        underlay.set_link("a", NET, False)
        kernel.run_until(60)
        outcomes.append((hosts["a"].power, hosts["b"].power, kernel.tracer.sha256()))
        assert cluster.quorate("a")
        assert not cluster.status()["a"].fencing_pending
    assert all(o[:2] == (PowerState.ON, PowerState.OFF) for o in outcomes)
    assert len({o[2] for o in outcomes}) == 1, "same events whatever the seed"


def test_only_a_quorate_partition_fences() -> None:
    """dlm_controld(8) enable_quorum_fencing: a node without quorum does not fence."""
    kernel, hosts, underlay, _c = build(("a", "b", "c"), fencing=ClusterFencing.POWER)
    underlay.partition((("a", "b"), ("c",)), None)
    kernel.run_until(60)
    assert hosts["c"].power is PowerState.OFF
    assert hosts["a"].up and hosts["b"].up


def test_dlm_modes_ex_excludes_pr_shares() -> None:
    """DLM mode compatibility (VMS matrix, linux fs/dlm): PR/PR compatible, EX exclusive;
    a NOQUEUE request on a conflict fails at once (-EAGAIN)."""
    kernel, _h, _u, cluster = build(("a", "b", "c"), fencing=ClusterFencing.NONE)
    first = cluster.dlm_lock("a", "r", "sh")
    second = cluster.dlm_lock("b", "r", "pr")
    refused = cluster.dlm_lock("c", "r", "ex", noqueue=True)
    queued = cluster.dlm_lock("c", "r", "ex")
    kernel.run_until(0.1)
    assert first.ok and second.ok
    assert refused.triggered and isinstance(refused.value, LockConflict)
    assert not queued.triggered
    cluster.dlm_unlock("a", "r")
    cluster.dlm_unlock("b", "r")
    kernel.run_until(0.2)
    assert queued.triggered and queued.ok


def test_partitions_without_fencing_both_get_the_same_exclusive_lock() -> None:
    """Why fencing exists: with fencing none (dlm enable_fencing=0) and two_node, each side
    recovers the lockspace alone and each grants EX on the same resource."""
    kernel, _h, underlay, cluster = build(two_node=True, fencing=ClusterFencing.NONE)
    underlay.set_link("a", NET, False)
    kernel.run_until(5)
    ra = cluster.dlm_lock("a", "V_vg", "ex")
    rb = cluster.dlm_lock("b", "V_vg", "ex")
    kernel.run_until(6)
    assert ra.ok and rb.ok


def test_stonith_from_both_drbd_peers_kills_exactly_one() -> None:
    """DRBD fencing resource-and-stonith: both primaries' fence-peer handlers call the
    cluster's fencing at once; the lower node id's agent fires first, the other requester
    is dead before its own (delayed) agent fires."""
    kernel, hosts, _u, cluster = build(two_node=True, fencing=ClusterFencing.POWER)
    assert cluster.stonith("a", "b") is True
    assert cluster.stonith("b", "a") is True
    by_b, by_a = cluster.fence("a", "b"), cluster.fence("b", "a")  # the same requests
    kernel.run_until(30)
    assert hosts["b"].power is PowerState.OFF and hosts["a"].up
    assert by_a.value is True and by_b.value is False


@pytest.mark.parametrize("seed", [7, 8])
def test_same_seed_same_trace(seed: int) -> None:
    """DESIGN.md: same seed, same trace, byte for byte."""
    def run() -> str:
        kernel, hosts, underlay, _c = build(("a", "b", "c"), seed=seed)
        underlay.partition((("a",), ("b", "c")), None)
        hosts["b"].hang()
        kernel.run_until(100)
        return kernel.tracer.sha256()

    assert run() == run()
