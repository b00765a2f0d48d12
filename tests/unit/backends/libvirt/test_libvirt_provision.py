"""Where the lab build leaves a volume group's LVs active, the same on real guests as in
the simulator: under local locking on every host that may open the PV (each Primary of a
dual-primary resource), a shared VG nowhere until a guest uses an LV."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.backends.libvirt.provision import activated_elsewhere
from stackdrill.backends.sim import SimBackend
from stackdrill.topology import Topology, load_topology, parse_topology

ROOT = Path(__file__).resolve().parents[4]


def _clvm_pair(locking: str) -> Topology:
    data = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml").model_dump(mode="json")
    data["volume_groups"][0]["locking"] = locking
    return parse_topology(data, "<test>")


def test_local_locking_activates_on_every_primary_as_the_simulator_does() -> None:
    topo = _clvm_pair("local")
    vg = topo.volume_groups[0]
    primaries = topo.drbd_resource(vg.pv.drbd or "").primary
    on_guests = (primaries[0], *activated_elsewhere(vg, primaries))
    with SimBackend().create(topo, lab_name="activation", seed=1) as sim:
        assert on_guests == sim._initial_active_hosts(vg.name) == ("alice", "bob")


@pytest.mark.parametrize("locking", ["lvmlockd", "clustered"])
def test_a_shared_vg_is_activated_only_where_used(locking: str) -> None:
    topo = _clvm_pair(locking)
    vg = topo.volume_groups[0]
    assert activated_elsewhere(vg, ("alice", "bob")) == ()
