"""`Underlay.connected` is packets passing both ways; it asks the second way only under a
one-way cut (the only fault that makes `passes` asymmetric), since it runs on every write."""

from __future__ import annotations

import itertools
import random

import pytest

from stackdrill.api import PowerState
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology import Host, Network, NetworkPurpose, Role, Topology

NODES = ("a", "b", "c", "d")
NETS = ("n1", "n2")


def lab() -> tuple[dict[str, SimHost], Underlay]:
    kernel = Kernel(1)
    specs = tuple(Host(name=n, roles=(Role.COMPUTE,)) for n in NODES)
    nets = tuple(Network(name=name, purposes=(NetworkPurpose.STORAGE,), cidr=f"10.{i}.0.0/24",
                         addresses={n: f"10.{i}.0.{j + 1}" for j, n in enumerate(NODES)})
                 for i, name in enumerate(NETS))
    hosts = {h.name: SimHost(kernel, h) for h in specs}
    return hosts, Underlay(kernel, Topology(name="t", hosts=specs, networks=nets), hosts)


def both_ways(u: Underlay, a: str, b: str, net: str) -> bool:
    return u.passes(a, b, net) and u.passes(b, a, net)


@pytest.mark.parametrize("seed", range(20))
def test_connected_is_passing_both_ways_under_any_mix_of_faults(seed: int) -> None:
    rng = random.Random(seed)
    hosts, u = lab()
    for _ in range(12):
        pick = rng.randrange(5)
        if pick == 0:
            u.set_link(rng.choice(NODES), rng.choice(NETS), rng.random() < 0.5)
        elif pick == 1:
            hosts[rng.choice(NODES)].power = rng.choice(list(PowerState))
        elif pick == 2:
            u.partition((tuple(rng.sample(NODES, 2)),), rng.choice((*NETS, None)))
        else:  # one-way cuts: the case a shortcut could get wrong
            u.cut(((rng.choice(NODES), rng.choice(NODES)),), rng.choice((*NETS, None)))
        for a, b in itertools.product(NODES, NODES):
            for net in NETS:
                assert u.connected(a, b, net) == both_ways(u, a, b, net), (a, b, net)


def test_a_one_way_cut_disconnects_both_ends() -> None:
    _hosts, u = lab()
    u.cut((("a", "b"),), "n1")
    assert u.passes("b", "a", "n1") and not u.passes("a", "b", "n1")
    assert not u.connected("a", "b", "n1") and not u.connected("b", "a", "n1")
    assert u.connected("a", "b", "n2")
