"""lvm2 + device-mapper on hosts sharing one PV, with no locking and with local locking.

The shared PV is one SimDisk handed to both hosts as their PV device: a stand-in
for dual-primary DRBD protocol C, where a write on either host is on both disks
before it completes.
"""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from stackdrill.backends.sim.disks import BLOCK_BYTES, BlockIOError, SimDisk
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm import LvmError, LvmHost, LvmTimings, VolumeGroupSim
from stackdrill.topology.model import Host, Locking, PhysicalVolume, Role, VolumeGroup

EXTENT_BLOCKS = 4 * (1 << 20) // BLOCK_BYTES  # 4 MiB extents


def build(locking: Locking = Locking.LOCAL, hosts: tuple[str, ...] = ("a", "b"),
          timings: LvmTimings | None = None, lvs: dict[str, int] | None = None
          ) -> tuple[Kernel, dict[str, SimHost], dict[str, LvmHost], VolumeGroupSim, SimDisk]:
    kernel = Kernel(1)
    sim_hosts = {n: SimHost(kernel, Host(name=n, roles=(Role.STORAGE,), boot_s=10.0))
                 for n in hosts}
    disk = SimDisk(kernel, hosts[0], "pv", size_gb=1)
    lvm = {n: LvmHost(kernel, n, sim_hosts[n], timings) for n in hosts}
    spec = VolumeGroup(name="vg", pv=PhysicalVolume(drbd="r0"), locking=locking)
    vg = VolumeGroupSim(kernel, spec, dict.fromkeys(hosts, disk), 100, None, lvm)
    vg.initialise({"base": 10} if lvs is None else lvs)
    kernel.run_until(0.01)
    return kernel, sim_hosts, lvm, vg, disk


def finish(kernel: Kernel, event: simpy.Event, limit: float = 100.0) -> Any:
    """Run until `event` is done; return its value or raise its error."""
    while not event.triggered and kernel.env.peek() < limit:
        kernel.env.step()
    kernel.run_until(kernel.now + 1e-6)
    assert event.triggered, "command did not finish"
    if not event.ok:
        raise event.value
    return event.value


def extents(view_lvs: dict[str, list[tuple[int, int]]], lv: str) -> set[int]:
    return {pe for first, n in view_lvs[lv] for pe in range(first, first + n)}


def test_command_reads_then_writes_seqno_plus_one_after_parameterised_delays() -> None:
    """lvm2 2.02 (no lvmetad) and 2.03 read the metadata from the PV when a command starts
    and write it back later with seqno + 1 (lib/metadata/metadata.c vg_write: seqno++);
    lvcreate activates the new LV on the host that ran it."""
    t = LvmTimings(scan_s=0.5, write_delay_s=2.0, activate_s=0.25)
    kernel, _h, lvm, _vg, _d = build(timings=t)
    start = kernel.now
    finish(kernel, lvm["a"].lvcreate("vg", "data", 5))
    trace = kernel.tracer.lines()
    read = next(line for line in trace if " lvm/a vg-read " in line)
    commit = next(line for line in trace if " lvm/a vg-commit " in line)
    assert "seqno=1" in read and "seqno=2" in commit
    assert float(read.split()[0]) == pytest.approx(start + 0.5, abs=0.01)
    assert float(commit.split()[0]) == pytest.approx(start + 2.5, abs=0.01)
    view = lvm["b"].view("vg")  # the other host reads the same PV
    assert view.metadata_seqno == 2 and set(view.metadata_lvs) == {"base", "data"}
    assert "data" in lvm["a"].view("vg").active_lvs
    assert "data" not in view.active_lvs, "local locking does not activate on the peer (seed)"


def test_local_locking_serialises_commands_on_one_host() -> None:
    """lvm.conf(5) locking_type 1: local file-based locking; two commands on one host wait
    for each other, the second reads what the first wrote."""
    kernel, _h, lvm, _vg, _d = build()
    first = lvm["a"].lvcreate("vg", "one", 5)
    second = lvm["a"].lvcreate("vg", "two", 5)
    finish(kernel, first)
    finish(kernel, second)
    view = lvm["a"].view("vg")
    assert view.metadata_seqno == 3
    assert not extents(view.metadata_lvs, "one") & extents(view.metadata_lvs, "two")


def test_no_locking_loses_a_change_even_on_one_host() -> None:
    """lvm.conf(5) locking_type 0: 'Turns off locking. Warning: this risks metadata
    corruption if commands run concurrently.'"""
    kernel, _h, lvm, _vg, _d = build(Locking.NONE)
    first = lvm["a"].lvcreate("vg", "one", 5)
    second = lvm["a"].lvcreate("vg", "two", 5)
    finish(kernel, first)
    finish(kernel, second)
    view = lvm["a"].view("vg")
    assert view.metadata_seqno == 2
    assert "one" not in view.metadata_lvs and "two" in view.metadata_lvs


def test_local_locking_on_dual_primary_loses_a_change_and_overlaps_two_lvs() -> None:
    """The seed (Clustered LVM on DRBD): locking_type 1 'knows nothing about the cluster
    and possible conflicting metadata changes'. Two overlapping lvcreate on two hosts both
    read seqno N and both write N+1: the first reported success but is lost, and its LV
    stays mapped on its host over the extents the surviving metadata gives the other."""
    kernel, _h, lvm, _vg, _d = build()
    on_a = lvm["a"].lvcreate("vg", "lv-a", 10)
    kernel.run_until(kernel.now + 0.01)
    on_b = lvm["b"].lvcreate("vg", "lv-b", 10)
    assert finish(kernel, on_a) is None and finish(kernel, on_b) is None  # both "succeeded"
    va, vb = lvm["a"].view("vg"), lvm["b"].view("vg")
    assert va.metadata_seqno == vb.metadata_seqno == 2
    assert "lv-a" not in va.metadata_lvs, "host a's own change is gone from the disk"
    assert "lv-a" in va.active_lvs
    assert extents(va.active_lvs, "lv-a") == extents(vb.metadata_lvs, "lv-b")
    # a guest writing through lv-a on host a overwrites lv-b's data
    finish(kernel, lvm["b"].lv_device("vg", "lv-b").write(7, "lv-b data"))
    finish(kernel, lvm["a"].lv_device("vg", "lv-a").write(7, "lv-a data"))
    assert finish(kernel, lvm["b"].lv_device("vg", "lv-b").read(7)) == "lv-a data"


def test_stale_table_keeps_the_old_mapping_until_refresh() -> None:
    """dmsetup(8): a loaded table stays until reload+resume. lvextend on one host with
    local locking reloads only that host's table; the other keeps the old size until
    lvchange/vgchange --refresh."""
    kernel, _h, lvm, _vg, _d = build()  # base active on both hosts
    finish(kernel, lvm["a"].lvextend("vg", "base", 5))
    beyond_old_end = 10 * EXTENT_BLOCKS + 3
    finish(kernel, lvm["a"].lv_device("vg", "base").write(beyond_old_end, "x"))
    vb = lvm["b"].view("vg")
    assert vb.active_lvs["base"] == [(0, 10)] and vb.metadata_lvs["base"] == [(0, 15)]
    with pytest.raises(BlockIOError):
        finish(kernel, lvm["b"].lv_device("vg", "base").read(beyond_old_end))
    finish(kernel, lvm["b"].refresh("vg"))
    assert finish(kernel, lvm["b"].lv_device("vg", "base").read(beyond_old_end)) == "x"


def test_lv_removed_elsewhere_stays_active_here_over_reused_extents() -> None:
    """Local locking: lvremove on one host deactivates it there only; the other host's dm
    device survives, and its extents go to the next LV created (`lvs` on that host no longer
    lists it, `dmsetup table` still does)."""
    kernel, _h, lvm, _vg, _d = build()
    finish(kernel, lvm["a"].lvremove("vg", "base"))
    finish(kernel, lvm["a"].lvcreate("vg", "new", 10))
    vb = lvm["b"].view("vg")
    assert "base" in vb.active_lvs and "base" not in vb.metadata_lvs
    assert extents(vb.active_lvs, "base") == extents(vb.metadata_lvs, "new")
    finish(kernel, lvm["b"].refresh("vg"))
    assert "base" in lvm["b"].view("vg").active_lvs, "refresh cannot reload an unknown LV"


def test_power_loss_drops_the_hosts_dm_tables() -> None:
    """device-mapper state lives in the kernel: after a power cut no LV is active."""
    kernel, hosts, lvm, _vg, _d = build()
    hosts["b"].crash()
    assert lvm["b"].view("vg").active_lvs == {}
    with pytest.raises(BlockIOError):
        finish(kernel, lvm["b"].lv_device("vg", "base").read(0))
    assert lvm["a"].view("vg").active_lvs["base"] == [(0, 10)]


def test_crash_between_vg_write_and_vg_commit_keeps_the_old_metadata() -> None:
    """lvm2 writes the new text first and commits it by rewriting the mda header
    (vg_write/vg_commit); a crash in between leaves the previous metadata in force."""
    kernel, hosts, lvm, _vg, _d = build(timings=LvmTimings(scan_s=0.1, write_delay_s=1.0))
    cmd = lvm["a"].lvcreate("vg", "lost", 5)
    kernel.run_until(kernel.now + 1.1 + 0.001 + 0.0002)  # text write submitted, not done
    hosts["a"].crash()
    with pytest.raises(LvmError):
        finish(kernel, cmd)
    view = lvm["b"].view("vg")
    assert view.metadata_seqno == 1 and "lost" not in view.metadata_lvs


def test_a_hung_host_resumes_its_command_with_what_it_read_before() -> None:
    """A frozen host's lvm command continues when it thaws, with the metadata it read
    before: it overwrites the peer's newer change (same seqno), as nothing re-reads."""
    kernel, hosts, lvm, _vg, _d = build()
    stale = lvm["a"].lvcreate("vg", "zombie", 5)
    kernel.run_until(kernel.now + 0.1)  # a has read seqno 1
    hosts["a"].hang()
    finish(kernel, lvm["b"].lvcreate("vg", "fresh", 5))
    assert lvm["b"].view("vg").metadata_seqno == 2
    hosts["a"].thaw()
    finish(kernel, stale)
    view = lvm["b"].view("vg")
    assert view.metadata_seqno == 2 and "fresh" not in view.metadata_lvs


def test_command_errors_read_like_lvm2() -> None:
    """Messages from lvm2's lv_manip.c / metadata.c for the usual refusals."""
    kernel, _h, lvm, _vg, _d = build(hosts=("a",))
    with pytest.raises(LvmError, match='already exists in volume group "vg"'):
        finish(kernel, lvm["a"].lvcreate("vg", "base", 1))
    with pytest.raises(LvmError, match=r"insufficient free space \(90 extents\): 91 required"):
        finish(kernel, lvm["a"].lvcreate("vg", "big", 91))
    with pytest.raises(LvmError, match='Failed to find logical volume "vg/nope"'):
        finish(kernel, lvm["a"].lvextend("vg", "nope", 1))
    with pytest.raises(LvmError, match='Volume group "other" not found'):
        finish(kernel, lvm["a"].activate("other", "base", "ex"))
    assert lvm["a"].view("vg").metadata_seqno == 1


def test_pv_io_error_fails_the_command() -> None:
    """A PV that returns EIO (failed disk, DRBD Secondary) makes the VG unreadable."""
    kernel, _h, lvm, _vg, disk = build(hosts=("a",))
    disk.fail()
    with pytest.raises(LvmError, match='Volume group "vg" not found'):
        finish(kernel, lvm["a"].lvcreate("vg", "x", 1))


def test_records_read_through_the_on_disk_metadata() -> None:
    """What a replica holds for an LV is found through the metadata on that PV."""
    kernel, _h, lvm, vg, _d = build(lvs={"one": 2, "two": 2})
    finish(kernel, lvm["a"].lv_device("vg", "two").write(3, "r3"))
    assert vg.read_lv_records("two") == {3: "r3"}
    assert vg.read_lv_records("one") == {}
    assert vg.hosts() == ("a", "b")


def test_same_seed_same_lvm_trace() -> None:
    """DESIGN.md: same seed, same trace, byte for byte (the racing lvcreate included)."""
    def run() -> str:
        kernel, _h, lvm, _vg, _d = build()
        a, b = lvm["a"].lvcreate("vg", "x", 3), lvm["b"].lvcreate("vg", "y", 3)
        finish(kernel, a)
        finish(kernel, b)
        return kernel.tracer.sha256()

    assert run() == run()
