"""Scenario 1 and 11 by hand on real guests: a workload writes to a DRBD-mirrored LV, its host
loses power, the drivers move it to the replica, and every acknowledged write is there.

Opt-in like test_libvirt_vm.py (STACKDRILL_VM_TESTS=1), ~2 min on 2 cores. The drivers used
are the ones the recovery engine uses; the verdict comes from the same `acked_writes` check
the simulator's drills use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.vm

libvirt = pytest.importorskip("libvirt")

from libvirt_support import failover_pair, require_vm  # noqa: E402

from stackdrill.api import LabOptions, PowerState  # noqa: E402
from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.checks.writes import acked_writes  # noqa: E402
from stackdrill.faults import HostCrash  # noqa: E402


def wait_for(what: str, cond: Callable[[], bool], timeout: float) -> None:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(1.0)


def acked(lab: LibvirtLab, incarnation: int) -> int:
    return sum(1 for op in lab.history() if op.outcome == "ok" and op.incarnation == incarnation)


@pytest.fixture(scope="module")
def wl_lab() -> Iterator[LibvirtLab]:
    require_vm(2)
    start = time.monotonic()
    lab = LibvirtBackend(disk_cap_mb=64).create(
        failover_pair(), lab_name=f"wl{os.getpid()}", seed=1,
        options=LabOptions(write_interval_s=0.5))
    try:
        print(f"\nworkload lab up in {time.monotonic() - start:.1f} s: {lab.timings}")
        yield lab
    finally:
        lab.destroy()


def test_failover_keeps_every_acknowledged_write(wl_lab: LibvirtLab) -> None:
    """DRBD protocol C: nothing acknowledged on the primary is lost when it loses power; the
    workload restarted on the peer replays the volume and continues after the last record."""
    lab = wl_lab
    wait_for("first acknowledged writes", lambda: acked(lab, 1) >= 5, 60)
    start = time.monotonic()
    lab.inject(HostCrash(host="alice", power_back=False))
    assert lab.drivers.compute.health("alice").power is PowerState.OFF
    path = lab.drivers.storage.prepare("vol1", "bob", failed=["alice"]).result(timeout=120)
    lab.drivers.compute.start("vm1", "bob", {"vol1": path.path}).result(timeout=120)
    assert lab.drivers.compute.verify("vm1", "bob").result(timeout=90)
    wait_for("writes of the second incarnation", lambda: acked(lab, 2) >= 3, 60)
    print(f"\nfailover to a running workload: {time.monotonic() - start:.1f} s")
    guests = lab.drivers.compute.guests("bob").result(timeout=30)
    assert [(g.name, g.running) for g in guests] == [("vm1", True)]
    lab.quiesce()  # a consistent final read, as Jepsen reads after its clients stop
    stored = {"vol1": lab.stored_records("vol1")}
    history = lab.history()
    lab.quiesce(resume=True)
    result = acked_writes(history, stored)
    assert result.ok, result.detail
    first = max(op.seq for op in history if op.incarnation == 1 and op.outcome == "ok")
    assert min(op.seq for op in history if op.incarnation == 2) > first


def test_returning_host_does_not_run_the_instance_again(wl_lab: LibvirtLab) -> None:
    """The failed host powers on again: it must not restart vm1 (no zombie writer), and its
    DRBD, brought up by hand, joins as Secondary; the acknowledged writes stay intact."""
    lab = wl_lab
    resumed = lab.clock.now()
    lab.drivers.power.power_on("alice").result(timeout=180)
    assert lab.drivers.compute.guests("alice").result(timeout=30) == []
    lab.run("alice", "drbdadm up r0", timeout=60).check()
    wait_for("alice resyncs as Secondary", lambda: lab.observe().drbd["r0"].get(
        "alice", {}).get("disk") == "UpToDate", 90)
    assert lab.observe().drbd["r0"]["alice"].role == "Secondary"
    wait_for("heartbeats from alice again",
             lambda: (lab.drivers.compute.health("alice").last_heartbeat or 0)
             > lab.clock.now() - 10, 30)
    lab.quiesce()
    result = acked_writes(lab.history(), {"vol1": lab.stored_records("vol1")})
    assert result.ok, result.detail
    assert any(op.incarnation == 2 and op.outcome == "ok" and op.invoked > resumed
               for op in lab.history())  # vm1 kept writing on bob meanwhile
