"""Real guests: DRBD 8.4 between two TCG (or KVM) guests, faults injected through libvirt.

Opt-in, because it boots two VMs (~2 min on 2 cores): STACKDRILL_VM_TESTS=1, root, libvirt,
qemu and the guest image from lab/images/build.py. Every state is read the way an operator
reads it (/proc/drbd, drbdadm, md5sum, ip) through the guest agent. Timings are written to
$STACKDRILL_VM_TIMINGS (JSON) when set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.vm

libvirt = pytest.importorskip("libvirt")

from libvirt_support import require_vm, two_node  # noqa: E402

from stackdrill.api import PowerState  # noqa: E402
from stackdrill.backends.libvirt import LibvirtBackend, drbd  # noqa: E402
from stackdrill.backends.libvirt.agent import GuestCommandError  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.testinfra_backend import guest_host  # noqa: E402
from stackdrill.faults import (  # noqa: E402
    DiskFailure,
    HostCrash,
    HostHang,
    LinkDown,
    Partition,
    UnderlayMtu,
)

TIMINGS: dict[str, float] = {}
FREE_MIB = 40  # raw writes go past vg0 (PV label + vol1 = 50% of a 64 MiB disk)


LAB: list[LibvirtLab] = []  # the module's lab, for failure messages


def wait_for(what: str, cond: Callable[[], bool], timeout: float) -> float:
    """Poll `cond` until true; the seconds it took, or fail naming what never happened and
    what DRBD looked like then."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            seen = status(LAB[0]) if LAB else {}
            pytest.fail(f"{what}: not within {timeout:.0f} s; DRBD: {seen}")
        time.sleep(0.5)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def vm_lab() -> Iterator[LibvirtLab]:
    require_vm(3)
    start = time.monotonic()
    lab = LibvirtBackend(disk_cap_mb=64).create(two_node(), lab_name=f"vm{os.getpid()}", seed=1)
    LAB[:] = [lab]
    try:
        TIMINGS["lab_up_and_drbd_sync_64mib_s"] = time.monotonic() - start
        TIMINGS.update({f"boot_{h}_s": s for h, s in lab.boot_seconds.items()})
        TIMINGS.update({f"provision_{k}": v for k, v in lab.timings.items()})
        yield lab
    finally:
        start = time.monotonic()
        lab.destroy()
        TIMINGS["destroy_s"] = time.monotonic() - start
        out = os.environ.get("STACKDRILL_VM_TIMINGS")
        if out:
            Path(out).write_text(json.dumps({k: round(v, 1) for k, v in TIMINGS.items()},
                                            indent=2) + "\n")


def res(lab: LibvirtLab) -> Any:
    return lab.topology.drbd_resource("r0")


def status(lab: LibvirtLab) -> dict[str, dict[str, Any]]:
    return drbd.status(lab, res(lab))


def in_sync(lab: LibvirtLab) -> bool:
    st = status(lab)
    return len(st) == 2 and all(
        s.connection == "Connected" and s.disk == "UpToDate" and s.peer_disk == "UpToDate"
        for s in st.values())


def test_initial_sync_gives_primary_and_secondary_uptodate(vm_lab: LibvirtLab) -> None:
    """DRBD 8.4: after `primary --force` the full sync makes both disks UpToDate, Connected."""
    st = status(vm_lab)
    assert (st["alice"].role, st["bob"].role) == ("Primary", "Secondary")
    assert st["alice"].out_of_sync_kb == 0
    alice = guest_host(vm_lab.nodes["alice"].domain)
    assert "10.60.0.1" in {str(a) for a in alice.interface("repl").addresses}
    assert alice.run("drbdadm cstate r0").stdout.strip() == "Connected"
    assert alice.run("drbdadm role r0").stdout.strip().startswith("Primary")


def test_link_down_leaves_blocks_out_of_sync_until_reconnect(vm_lab: LibvirtLab) -> None:
    """DRBD 8.4: writes while the peer is unreachable are tracked in the bitmap (oos>0,
    WFConnection); on reconnect only those blocks resync and both return to UpToDate."""
    fault = LinkDown(host="bob", network="repl")
    vm_lab.inject(fault)
    start = time.monotonic()
    vm_lab.run("alice", f"dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek={FREE_MIB} "
               "oflag=direct", timeout=90).check()
    TIMINGS["link_down_detect_s"] = wait_for(
        "alice loses the peer",
        lambda: status(vm_lab)["alice"].connection in {"WFConnection", "Connecting"}, 60)
    wait_for("out-of-sync blocks", lambda: (status(vm_lab)["alice"].out_of_sync_kb or 0) > 0, 30)
    assert status(vm_lab)["alice"].peer_disk == "DUnknown"
    vm_lab.heal(fault)
    TIMINGS["link_heal_resync_s"] = wait_for("reconnect and resync", lambda: in_sync(vm_lab), 90)
    TIMINGS["link_down_drill_s"] = time.monotonic() - start


def test_disk_failure_detaches_the_replica_and_reattach_resyncs(vm_lab: LibvirtLab) -> None:
    """on-io-error detach: an I/O error on the backing disk makes that node Diskless while the
    resource keeps serving from the peer; `drbdadm attach` after the disk returns resyncs."""
    start = time.monotonic()
    fault = DiskFailure(host="bob", disk="sdb")
    vm_lab.inject(fault)
    vm_lab.run("alice", f"dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek={FREE_MIB + 4} "
               "oflag=direct", timeout=90).check()
    wait_for("bob detaches", lambda: status(vm_lab)["bob"].disk == "Diskless", 60)
    assert status(vm_lab)["alice"].peer_disk == "Diskless"
    vm_lab.heal(fault)
    wait_for("disk returns", lambda: vm_lab.run("bob", "test -b /dev/vdb").rc == 0, 30)
    vm_lab.run("bob", "drbdadm attach r0", timeout=60).check()
    wait_for("resync after attach", lambda: in_sync(vm_lab), 90)
    TIMINGS["disk_failure_drill_s"] = time.monotonic() - start


def test_hang_stops_the_guest_and_resume_continues(vm_lab: LibvirtLab) -> None:
    """A suspended domain is powered (HUNG) but answers nothing; resume continues it."""
    vm_lab.inject(HostHang(host="bob"))
    assert vm_lab.drivers.power.state("bob") is PowerState.HUNG
    with pytest.raises(GuestCommandError):
        vm_lab.run("bob", "true", timeout=5)
    vm_lab.heal(HostHang(host="bob"))
    wait_for("bob answers again", lambda: vm_lab.run("bob", "true").rc == 0, 30)


def test_a_command_outlives_an_agent_that_stalls_while_it_runs(vm_lab: LibvirtLab) -> None:
    """Under TCG load a guest's agent can stay silent past one poll's timeout while the
    command still runs; the command's result still arrives (here the agent stops itself
    for 12 s, longer than the 10 s a poll waits)."""
    agent = "$(pgrep -x qemu-ga)"
    vm_lab.run("bob", f"setsid sh -c 'sleep 1; kill -STOP {agent}; sleep 12; "
                      f"kill -CONT {agent}' >/dev/null 2>&1 < /dev/null &").check()
    result = vm_lab.run("bob", "sleep 3; echo finished", timeout=60)
    assert (result.rc, result.stdout.strip()) == (0, "finished")


def test_lowered_underlay_mtu_refuses_full_size_frames(vm_lab: LibvirtLab) -> None:
    """`ping -M do` (don't fragment) with a 1472-byte payload needs a 1500 MTU path: after the
    host's MTU drops to 1400 the kernel refuses it locally ("message too long"); heal restores
    the topology's MTU and the same ping passes."""
    probe = "ping -M do -s 1472 -c 1 -W 2 10.50.0.2"
    assert vm_lab.run("alice", probe).rc == 0
    fault = UnderlayMtu(host="alice", network="mgmt", mtu=1400)
    vm_lab.inject(fault)
    refused = vm_lab.run("alice", probe)
    assert refused.rc != 0 and "message too long" in (refused.stdout + refused.stderr).lower()
    vm_lab.heal(fault)
    assert vm_lab.run("alice", probe).rc == 0


def test_failover_after_power_cut_keeps_acknowledged_data(vm_lab: LibvirtLab) -> None:
    """Protocol C: a write acknowledged on the primary is on the peer's disk, so after a power
    cut the storage driver promotes the peer and activates the LV with identical data; the
    returning host comes back Secondary, syncs from the new primary and does not take the
    resource back."""
    start = time.monotonic()
    write = "dd if=/dev/urandom of=/tmp/blk bs=1M count=8 && " \
            "dd if=/tmp/blk of=/dev/vg0/vol1 bs=1M oflag=direct && md5sum < /tmp/blk"
    written = vm_lab.run("alice", write, timeout=90).check().stdout.split()[0]
    vm_lab.inject(HostCrash(host="alice", power_back=False))
    assert vm_lab.drivers.power.state("alice") is PowerState.OFF
    wait_for("bob loses alice",
             lambda: status(vm_lab)["bob"].connection in {"WFConnection", "Connecting"}, 60)
    path = vm_lab.drivers.storage.prepare("vol1", "bob", failed=["alice"]).result(timeout=120)
    assert path.path == "/dev/vg0/vol1"
    read = vm_lab.run("bob", f"dd if={path.path} bs=1M count=8 iflag=direct 2>/dev/null | md5sum")
    assert read.check().stdout.split()[0] == written
    TIMINGS["failover_s"] = time.monotonic() - start
    boot = time.monotonic()
    vm_lab.drivers.power.power_on("alice").result(timeout=180)
    TIMINGS["returning_host_boot_s"] = time.monotonic() - boot
    vm_lab.run("alice", "drbdadm up r0", timeout=60).check()
    wait_for("returning host resyncs", lambda: in_sync(vm_lab), 180)
    st = status(vm_lab)
    assert (st["alice"].role, st["bob"].role) == ("Secondary", "Primary")
    TIMINGS["failover_and_return_drill_s"] = time.monotonic() - start


def test_split_brain_is_detected_after_partition_and_resolved_by_discarding(
        vm_lab: LibvirtLab) -> None:
    """DRBD 8.4 with after-sb-*pri disconnect: if both sides were Primary and wrote while
    partitioned, the reconnect finds 'Split-Brain detected but unresolved, dropping
    connection!' and stays StandAlone; the operator picks a victim (`secondary`,
    `connect --discard-my-data`) and the victim resyncs from the survivor."""
    start = time.monotonic()
    roles = {h: s.role for h, s in status(vm_lab).items()}
    survivor = next(h for h, r in roles.items() if r == "Primary")
    victim = next(h for h in roles if h != survivor)
    fault = Partition(groups=((survivor,), (victim,)), network="repl")
    vm_lab.inject(fault)
    wait_for("both sides lose each other", lambda: all(
        s.connection in {"WFConnection", "Connecting", "NetworkFailure", "Timeout"}
        for s in status(vm_lab).values()), 60)
    vm_lab.run(victim, "drbdadm primary r0").check()
    for host, seek in ((survivor, FREE_MIB + 10), (victim, FREE_MIB + 14)):
        vm_lab.run(host, f"dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek={seek} "
                         "oflag=direct", timeout=60).check()
    vm_lab.heal(fault)
    wait_for("split brain detected", lambda: all(
        s.split_brain for s in status(vm_lab).values()), 60)
    wait_for("both give up the connection", lambda: all(
        s.connection == "StandAlone" for s in status(vm_lab).values()), 60)
    TIMINGS["split_brain_detect_s"] = time.monotonic() - start
    region = f"dd if=/dev/drbd0 bs=1M skip={FREE_MIB} count=20 iflag=direct 2>/dev/null | md5sum"
    survivor_md5 = vm_lab.run(survivor, region).stdout
    vm_lab.run(victim, "drbdadm secondary r0 && drbdadm connect --discard-my-data r0").check()
    vm_lab.run(survivor, "drbdadm connect r0").check()
    wait_for("victim resyncs from the survivor", lambda: in_sync(vm_lab), 90)
    vm_lab.drivers.storage.release("vol1", survivor).result(timeout=60)
    vm_lab.run(survivor, "drbdadm secondary r0").check()
    vm_lab.run(victim, "drbdadm primary r0").check()
    victim_md5 = vm_lab.run(victim, region).stdout
    assert victim_md5 == survivor_md5  # the victim's own write was discarded
    TIMINGS["split_brain_drill_s"] = time.monotonic() - start
