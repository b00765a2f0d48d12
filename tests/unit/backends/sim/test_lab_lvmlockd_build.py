"""The simulated lab builds a shared (lvmlockd) VG as the real guests are built: LVs created
inactive, then activated exclusively where an instance uses them (libvirt provision's
`lvcreate -an`, the storage driver's `lvchange -aey`). An LV active shared on both
Primaries instead would make lvm2 refuse a resize on the instance's host ("LV is already
locked with incompatible mode", recorded in lvm-lock-conflict-lvmlockd)."""

from __future__ import annotations

from pathlib import Path

from stackdrill.api import LabOptions
from stackdrill.backends.sim.lab import SimLab
from stackdrill.topology import Locking, load_topology

TOPOLOGY = Path(__file__).parents[4] / "lab" / "topologies" / "two-node-clvm.yaml"


def _lab() -> SimLab:
    topo = load_topology(TOPOLOGY)
    vg = topo.volume_groups[0].model_copy(update={"locking": Locking.LVMLOCKD})
    return SimLab(topo.model_copy(update={"volume_groups": (vg,)}), lab_name="t", seed=1,
                  options=LabOptions(writers=frozenset()))


def test_each_lv_is_active_only_on_its_instance_host() -> None:
    lab = _lab()
    assert set(lab.lvm_hosts["alice"].view("vg-shared").active_lvs) == {"lv-vm1"}
    assert set(lab.lvm_hosts["bob"].view("vg-shared").active_lvs) == {"lv-vm2"}
    assert lab.lvm_hosts["alice"].table("vg-shared", "lv-vm1").mode == "ex"  # type: ignore[union-attr]


def test_the_instance_host_can_extend_its_lv_and_the_other_cannot() -> None:
    lab = _lab()
    grow = lab.lvm_hosts["alice"].lvextend("vg-shared", "lv-vm1", 16)
    other = lab.lvm_hosts["bob"].lvextend("vg-shared", "lv-vm1", 16)
    lab.advance(30.0)
    assert grow.ok
    assert not other.ok and "LV locked by other host" in str(other.value)
