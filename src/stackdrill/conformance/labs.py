"""The small lab every network situation runs in, on the simulator and in namespaces.

Two hosts `a` and `b` on one tunnel network `wan` (MTU 1500), a VXLAN overlay `ov` over it
(MTU 1450) and one instance on each host (`va` on a, `vb` on b) without volumes or
workloads: nothing else sends, so what a situation counts is only its own traffic. A
netns lab lives only inside its `with` block (torn down however the block ends) and
its traffic never leaves the namespaces it creates.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import simpy

from stackdrill.api import LabOptions
from stackdrill.backends.sim.lab import SimLab
from stackdrill.topology import Topology, parse_topology

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

T = TypeVar("T")

NETWORK = "wan"
OVERLAY = "ov"
ADDRESS = {"a": "10.0.0.1", "b": "10.0.0.2"}
INSTANCE = {"a": "va", "b": "vb"}
INSTANCE_IP = {"va": "10.100.0.11", "vb": "10.100.0.12"}
SIM_SEED = 0
SIM_LIMIT_S = 600.0  # no simulated situation runs longer


def topology(underlay_mtu: int = 1500, overlay_mtu: int = 1450) -> Topology:
    """The lab's topology; a situation may vary the underlay's and the overlay's MTU."""
    return parse_topology({
        "name": "conformance",
        "hosts": [{"name": "a", "roles": ["compute"]}, {"name": "b", "roles": ["compute"]}],
        "networks": [{"name": NETWORK, "purposes": ["tunnel"], "cidr": "10.0.0.0/24",
                      "mtu": underlay_mtu, "addresses": ADDRESS}],
        "overlays": [{"name": OVERLAY, "vni": 100, "network": NETWORK, "mtu": overlay_mtu,
                      "cidr": "10.100.0.0/24"}],
        "flavors": {"tiny": {"vcpus": 1, "ram_mb": 256}},
        "instances": [
            {"name": "va", "flavor": "tiny", "host": "a", "overlay": OVERLAY,
             "mac": "fa:16:3e:00:00:01", "ip": INSTANCE_IP["va"]},
            {"name": "vb", "flavor": "tiny", "host": "b", "overlay": OVERLAY,
             "mac": "fa:16:3e:00:00:02", "ip": INSTANCE_IP["vb"]},
        ],
    }, "conformance")


def sim_lab(topo: Topology | None = None) -> SimLab:
    """The lab on the simulator (default topology: `topology()`), with one fixed seed: a
    situation's result is a constant."""
    return SimLab(topo or topology(), lab_name="conformance", seed=SIM_SEED,
                  options=LabOptions(writers=frozenset()))


def sim_run(lab: SimLab, process: Generator[simpy.Event, Any, T]) -> T:
    """Run one simulated process to its end (bounded by SIM_LIMIT_S of lab time)."""
    proc = lab.kernel.env.process(process)
    lab.advance(lab.kernel.now + SIM_LIMIT_S)
    if not proc.processed:
        raise RuntimeError(f"simulated situation still running after {SIM_LIMIT_S:g} s")
    return cast("T", proc.value)


@contextmanager
def netns_lab(topo: Topology | None = None) -> Iterator[NetnsLab]:
    """The lab in network namespaces (root); destroyed however the block ends."""
    from stackdrill.backends.netns.lab import NetnsLab

    lab = NetnsLab(topo or topology(), "conformance", heartbeats=False, start_workloads=False)
    try:
        yield lab
    finally:
        lab.destroy()
