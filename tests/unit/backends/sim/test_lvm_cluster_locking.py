"""Cluster-wide LVM locking: clvmd (locking_type 3, the seed) and lvmlockd (lvm2 2.03)."""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from stackdrill.api import PowerState
from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.disks import SimDisk
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm import LvmError, LvmHost, LvmTimings, VolumeGroupSim
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology.model import (
    ClusterFencing,
    ClusterSpec,
    Host,
    Locking,
    Network,
    NetworkPurpose,
    PhysicalVolume,
    Role,
    Topology,
    VolumeGroup,
)

NET = "ring"


class Lab:
    def __init__(self, locking: Locking, *, two_node: bool = True,
                 fencing: ClusterFencing = ClusterFencing.POWER, lock_manager: str = "dlm",
                 active_on: dict[str, tuple[str, ...]] | None = None,
                 timings: LvmTimings | None = None) -> None:
        names = ("a", "b")
        self.kernel = kernel = Kernel(3)
        specs = tuple(Host(name=n, roles=(Role.STORAGE,), boot_s=10.0) for n in names)
        net = Network(name=NET, purposes=(NetworkPurpose.CLUSTER,), cidr="10.0.0.0/24",
                      addresses={"a": "10.0.0.1", "b": "10.0.0.2"})
        self.hosts = {h.name: SimHost(kernel, h) for h in specs}
        self.underlay = Underlay(kernel, Topology(name="t", hosts=specs, networks=(net,)),
                                 self.hosts)
        self.cluster = ClusterSim(kernel, ClusterSpec(name="c", nodes=names, network=NET,
                                                      two_node=two_node, fencing=fencing),
                                  self.hosts, self.underlay, power_off=None)
        disk = SimDisk(kernel, "a", "pv", size_gb=1)  # both hosts' PV: dual-primary stand-in
        self.lvm = {n: LvmHost(kernel, n, self.hosts[n], timings) for n in names}
        spec = VolumeGroup(name="vg", pv=PhysicalVolume(drbd="r0"), locking=locking,
                           lock_manager=lock_manager)  # type: ignore[arg-type]
        self.vg = VolumeGroupSim(kernel, spec, dict.fromkeys(names, disk), 100, self.cluster,
                                 self.lvm)
        self.vg.initialise({"base": 10}, active_on=active_on)
        kernel.run_until(0.01)

    def finish(self, event: simpy.Event, limit: float = 200.0) -> Any:
        while not event.triggered and self.kernel.env.peek() < limit:
            self.kernel.env.step()
        self.kernel.run_until(self.kernel.now + 1e-6)
        assert event.triggered, "command did not finish"
        if not event.ok:
            raise event.value
        return event.value


def pes(segs: list[tuple[int, int]]) -> set[int]:
    return {pe for first, n in segs for pe in range(first, first + n)}


@pytest.mark.parametrize("locking", [Locking.CLUSTERED, Locking.LVMLOCKD])
def test_cluster_locking_serialises_metadata_changes_across_hosts(locking: Locking) -> None:
    """The seed: with locking_type 3 'clvmd takes care of possible concurrent metadata
    changes'; lvmlockd(8): the VG lock 'serializes access to a VG with all other LVM commands
    accessing the VG from all hosts'. The second command waits, then re-reads."""
    lab = Lab(locking)
    on_a = lab.lvm["a"].lvcreate("vg", "lv-a", 10)
    lab.kernel.run_until(lab.kernel.now + 0.01)
    on_b = lab.lvm["b"].lvcreate("vg", "lv-b", 10)
    lab.finish(on_a)
    lab.finish(on_b)
    view = lab.lvm["b"].view("vg")
    assert view.metadata_seqno == 3 and view.clustered
    assert not pes(view.metadata_lvs["lv-a"]) & pes(view.metadata_lvs["lv-b"])
    lines = lab.kernel.tracer.lines()
    assert any(" lvm/b vg-read " in line and "seqno=2" in line for line in lines)


def test_clvmd_lvcreate_activates_on_every_node_and_extend_reloads_them_all() -> None:
    """The seed: 'Logical Volumes created in the vg_shared volume group will be active on
    both nodes'; clvmd sends LV suspend/resume to all nodes (cluster_locking.c, node "*")."""
    lab = Lab(Locking.CLUSTERED)
    lab.finish(lab.lvm["a"].lvcreate("vg", "data", 5))
    assert lab.lvm["b"].view("vg").active_lvs["data"] == [(10, 5)]
    lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))
    vb = lab.lvm["b"].view("vg")
    assert vb.active_lvs["base"] == vb.metadata_lvs["base"] == [(0, 10), (15, 5)]


def test_clvmd_commands_wait_while_inquorate() -> None:
    """clvmd's VG lock is a DLM lock: without quorum (two nodes, no two_node, one lost) the
    command hangs until quorum returns (votequorum(5), dlm_controld(8))."""
    lab = Lab(Locking.CLUSTERED, two_node=False, fencing=ClusterFencing.NONE)
    lab.hosts["b"].crash()
    lab.kernel.run_until(5)
    cmd = lab.lvm["a"].lvcreate("vg", "data", 5)
    lab.kernel.run_until(10)
    assert not cmd.triggered
    lab.hosts["b"].power_on()
    lab.finish(cmd)
    assert lab.lvm["a"].view("vg").metadata_seqno == 2


def test_clvmd_commands_wait_for_manual_fencing_of_the_lost_node() -> None:
    """The seed's cman: two_node, manual fencing. After the peer is lost, the DLM (and so
    clvmd) waits until an operator acknowledges the fence with fence_ack_manual."""
    lab = Lab(Locking.CLUSTERED, fencing=ClusterFencing.MANUAL)
    lab.hosts["b"].hang()
    lab.kernel.run_until(10)
    cmd = lab.lvm["a"].lvcreate("vg", "data", 5)
    lab.kernel.run_until(100)
    assert not cmd.triggered
    lab.cluster.ack_manual_fence("b")
    lab.finish(cmd)


def test_clvmd_exclusive_activation_refused_where_active_elsewhere() -> None:
    """clvmd lvm-functions.c: an exclusive activation of an LV active on another node fails
    with 'Volume is busy on another node'."""
    lab = Lab(Locking.CLUSTERED, active_on={"base": ("b",)})
    with pytest.raises(LvmError, match="Volume is busy on another node"):
        lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    lab.finish(lab.lvm["b"].deactivate("vg", "base"))
    lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    assert "base" in lab.lvm["a"].view("vg").active_lvs


def test_lvmlockd_exclusive_activation_refused_where_active_elsewhere() -> None:
    """lvmlockd(8) LV activation: '-aey ... If the lock cannot be acquired, the LV is not
    activated and an error is reported. This would happen if the LV is active on another
    host.' (lvmlockd.c: 'LV locked by other host')."""
    lab = Lab(Locking.LVMLOCKD, active_on={"base": ("b",)})
    with pytest.raises(LvmError, match="LV locked by other host: vg/base"):
        lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    with pytest.raises(LvmError, match="LV locked by other host"):
        lab.finish(lab.lvm["a"].activate("vg", "base", "sh"))
    assert "base" not in lab.lvm["a"].view("vg").active_lvs


def test_lvmlockd_shared_activation_on_both_and_extend_refused() -> None:
    """lvmlockd(8): -asy lets several hosts activate; lvextend needs the LV lock ex
    (lockd_lv_resize), a transient request that lvmlockd refuses on the host's own
    persistent sh lock before asking the DLM (lvmlockd-core.c res_process: -EEXIST with
    LD_AF_SH_EXISTS; lvmlockd.c lockd_lv: "LV is already locked with incompatible mode";
    the gfs2/ocfs2 --lockopt shupdate path is not modelled). Recorded on lvm2 2.03.16:
    lvm-lock-conflict-lvmlockd, extend_shared_a."""
    lab = Lab(Locking.LVMLOCKD, active_on={"base": ()})
    lab.finish(lab.lvm["a"].activate("vg", "base", "sh"))
    lab.finish(lab.lvm["b"].activate("vg", "base", "sh"))
    with pytest.raises(LvmError, match=r"^LV is already locked with incompatible mode: vg/base$"):
        lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))
    lab.finish(lab.lvm["a"].deactivate("vg", "base"))
    with pytest.raises(LvmError, match=r"^LV locked by other host: vg/base$"):
        lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))  # held sh elsewhere only
    assert lab.lvm["a"].view("vg").metadata_seqno == 1
    lab.finish(lab.lvm["b"].deactivate("vg", "base"))
    lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))
    assert lab.lvm["a"].view("vg").active_lvs["base"] == [(0, 15)]


def test_lvmlockd_needs_lock_start_after_a_reboot() -> None:
    """lvmlockd(8) 'Lock start': a shared VG must be started (vgchange --lockstart) before
    it is used; metadata.c: 'Cannot access VG ... due to failed lock.'"""
    lab = Lab(Locking.LVMLOCKD, fencing=ClusterFencing.NONE)
    lab.hosts["b"].reboot()
    lab.kernel.run_until(15)
    assert lab.hosts["b"].power is PowerState.ON
    with pytest.raises(LvmError, match="Cannot access VG vg due to failed lock"):
        lab.finish(lab.lvm["b"].lvcreate("vg", "x", 1))
    start = lab.lvm["b"].lock_start("vg")
    lab.kernel.run_until(lab.kernel.now + 0.5)
    with pytest.raises(LvmError, match="lock start in progress"):
        lab.finish(lab.lvm["b"].lvcreate("vg", "x", 1))
    lab.finish(start)
    lab.finish(lab.lvm["b"].lvcreate("vg", "x", 1))
    assert lab.lvm["b"].view("vg").active_lvs["x"] == [(10, 1)]
    assert "x" not in lab.lvm["a"].view("vg").active_lvs, "lvmlockd activates ex, here only"


def test_lvmlockd_vg_lock_conflict_retries_then_fails() -> None:
    """lvmlockd.c: a VG lock held by another host is retried lvmlockd_lock_retries times one
    second apart, then 'VG <vg> lock failed: held by other host'."""
    slow = LvmTimings(write_delay_s=10.0)
    lab = Lab(Locking.LVMLOCKD, timings=slow)
    long_cmd = lab.lvm["a"].lvcreate("vg", "slow", 1)
    lab.kernel.run_until(lab.kernel.now + 0.01)
    with pytest.raises(LvmError, match="VG vg lock failed: held by other host"):
        lab.finish(lab.lvm["b"].lvcreate("vg", "quick", 1))
    lab.finish(long_cmd)


def test_sanlock_leases_of_a_dead_host_expire() -> None:
    """lvmlockd(8) with sanlock: locks live on the shared storage; a dead host's leases can
    be taken by others only after they expire."""
    lab = Lab(Locking.LVMLOCKD, lock_manager="sanlock", active_on={"base": ("b",)},
              timings=LvmTimings(sanlock_expiry_s=80.0))
    lab.hosts["b"].crash()
    lab.kernel.run_until(20)
    with pytest.raises(LvmError, match="LV locked by other host"):
        lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    lab.kernel.run_until(90)
    lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))


def test_refused_lock_conversion_keeps_the_shared_activation() -> None:
    """clvmd: converting a shared (CR) activation to exclusive while another node has it
    active fails, and the LV stays active shared here as before."""
    lab = Lab(Locking.CLUSTERED)  # base active on a and b, shared
    with pytest.raises(LvmError, match="busy on another node"):
        lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    assert lab.lvm["a"].table("vg", "base") is not None
    lab.finish(lab.lvm["b"].deactivate("vg", "base"))
    lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    with pytest.raises(LvmError, match="busy on another node"):
        lab.finish(lab.lvm["b"].activate("vg", "base", "sh"))


def test_lvmlockd_extend_of_an_lv_shared_only_here_is_refused_too() -> None:
    """The host's own sh lock refuses the ex resize even with no other holder: lvmlockd
    answers from its own persistent lock, the DLM is never asked (res_process)."""
    lab = Lab(Locking.LVMLOCKD, active_on={"base": ()})
    lab.finish(lab.lvm["a"].activate("vg", "base", "sh"))
    with pytest.raises(LvmError, match="already locked with incompatible mode"):
        lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))
    lab.finish(lab.lvm["a"].activate("vg", "base", "ex"))
    lab.finish(lab.lvm["a"].lvextend("vg", "base", 5))  # ex here: granted locally
    assert lab.lvm["a"].view("vg").active_lvs["base"] == [(0, 15)]


def test_lvmlockd_refused_activation_also_says_the_lv_was_not_locked() -> None:
    """lvchange -aey/-asy: lockd_lv's "LV locked by other host: vg/lv", then
    lv_active_change's own "Failed to lock logical volume vg/lv." (lib/metadata/lv.c),
    as lvm2 2.03.16 printed in lvm-lock-conflict-lvmlockd."""
    lab = Lab(Locking.LVMLOCKD, active_on={"base": ("b",)})
    for mode in ("ex", "sh"):
        with pytest.raises(LvmError) as refused:
            lab.finish(lab.lvm["a"].activate("vg", "base", mode))
        assert str(refused.value).splitlines() == [
            "LV locked by other host: vg/base", "Failed to lock logical volume vg/base."]


def test_lvmlockd_lock_start_without_a_lock_manager_says_so_three_times() -> None:
    """vgchange --lock-start with the stack stopped: the sh global lock finds no lock
    manager ("Start a lock manager, lvmlockd did not find one running.", lockd_global),
    goes on without it ("Skipping global lock: lockspace not found or started") and the
    start fails (lockd_start_vg) — lvm2 2.03.16 in cluster-clean-leave."""
    lab = Lab(Locking.LVMLOCKD, fencing=ClusterFencing.MANUAL, active_on={"base": ()})
    lab.finish(lab.lvm["b"].lock_stop("vg"))
    lab.cluster.stop_stack("b", lab.lvm["b"].lockspaces())
    with pytest.raises(LvmError) as refused:
        lab.finish(lab.lvm["b"].lock_start("vg"))
    assert str(refused.value).splitlines() == [
        "Start a lock manager, lvmlockd did not find one running.",
        "Skipping global lock: lockspace not found or started",
        "VG vg start failed: lock manager dlm is not running"]


def test_lvmlockd_first_dlm_lock_start_also_joins_the_global_lockspace() -> None:
    """With dlm, lvmlockd starts lvm_global before the first VG's lockspace
    (lvmlockd-core.c add_lockspace -> add_dlm_global_lockspace): two joins. Recorded in
    cluster-stack-startup: 2.97 s (and 4.47 s under load) on lvm2 2.03.16 TCG guests."""
    lab = Lab(Locking.LVMLOCKD, fencing=ClusterFencing.MANUAL, active_on={"base": ()})
    lab.finish(lab.lvm["b"].lock_stop("vg"))
    begun = lab.kernel.now
    lab.finish(lab.lvm["b"].lock_start("vg"))
    took = lab.kernel.now - begun
    assert took == pytest.approx(2 * LvmTimings().lockstart_s, abs=0.1)
    assert 2.5 < took < 4.5
