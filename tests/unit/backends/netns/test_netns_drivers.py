"""The drivers on their own: the seed's recovery script by hand, on the real kernel.

Nova DR (seed, case b): a compute host dies; fence it, connect its instance's volume on
another host over the network, spawn the instance there, plug its port; the returning
host must not run it again.
"""

from __future__ import annotations

import time

import pytest
from netns_helpers import needs_root, small_topology

from stackdrill.api import AttachMode, DriverError, LabOptions, PowerState
from stackdrill.backends.netns.lab import NetnsLab

pytestmark = [needs_root, pytest.mark.netns]


def _wait(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_host_failure_drill_by_hand_keeps_every_acknowledged_write() -> None:
    with NetnsLab(small_topology("drill"), "drill",
                  options=LabOptions(write_interval_s=0.02)) as lab:
        d = lab.drivers
        _wait(lambda: sum(o.outcome == "ok" for o in lab.history()) >= 5)
        t_fail = lab.clock.now()
        d.power.power_off("cmp1").result(timeout=10)  # the crash and the fence in one
        assert d.power.state("cmp1") is PowerState.OFF
        last_beat = d.compute.health("cmp1").last_heartbeat
        time.sleep(0.5)
        assert d.compute.health("cmp1").last_heartbeat == last_beat  # heartbeats stopped
        path = d.storage.prepare("vol1", "cmp2", failed=["cmp1"]).result(timeout=10)
        assert (path.mode, path.served_by) == (AttachMode.REMOTE, "ctl")
        d.network.plug("web1", "cmp2").result(timeout=10)
        d.compute.start("web1", "cmp2", {"vol1": path.path}).result(timeout=20)
        assert d.compute.verify("web1", "cmp2").result(timeout=10)
        assert d.network.reachable("web1").result(timeout=10)
        rto = lab.clock.now() - t_fail
        assert rto < 10
        # the returning host asks the control plane and drops the evacuated guest
        d.compute.set_boot_hook(lambda host, guests: ["web1"] if "web1" in guests else [])
        d.power.power_on("cmp1").result(timeout=10)
        assert lab.observe().running["web1"] == ["cmp2"]
        _wait(lambda: any(o.incarnation == 2 and o.outcome == "ok" for o in lab.history()))
        history = lab.history()
        stored = lab.stored_records("vol1")
        acked = [o for o in history if o.outcome == "ok"]
        assert all(stored[o.seq].checksum == o.checksum for o in acked)
        first = min(o.seq for o in history if o.incarnation == 2)
        assert first > max(o.seq for o in history if o.incarnation == 1)  # no overwrite


def test_workload_reconnects_after_the_storage_host_comes_back() -> None:
    """Writes during the storage host's outage are indeterminate or never acknowledged;
    once it boots, the same export serves again and the workload continues."""
    with NetnsLab(small_topology("storage"), "storage",
                  options=LabOptions(write_interval_s=0.02)) as lab:
        d = lab.drivers
        _wait(lambda: sum(o.outcome == "ok" for o in lab.history()) >= 3)
        d.power.power_off("ctl").result(timeout=10)
        assert lab.drivers.storage.replicas("vol1")[0].reachable is False
        with pytest.raises(DriverError, match="failed host"):
            d.storage.prepare("vol1", "cmp2", failed=["ctl"]).result(timeout=10)
        outage_end = None
        d.power.power_on("ctl").result(timeout=10)
        outage_end = lab.clock.now()
        _wait(lambda: any(o.outcome == "ok" and o.invoked > outage_end  # type: ignore[operator]
                          for o in lab.history()), timeout=15)
        stored = lab.stored_records("vol1")
        assert all(stored[o.seq].checksum == o.checksum for o in lab.history()
                   if o.outcome == "ok")


def test_guests_fails_on_a_host_that_is_off() -> None:
    with NetnsLab(small_topology("off", with_volume=False), "off") as lab:
        assert [g.name for g in lab.drivers.compute.guests("cmp1").result(5)] == ["web1"]
        lab.drivers.power.power_off("cmp1").result(5)
        with pytest.raises(DriverError, match="off"):
            lab.drivers.compute.guests("cmp1").result(5)


def test_a_host_fenced_while_it_boots_stays_off() -> None:
    """A returning host powered off again by the engine in the middle of its boot (boot_s)
    never finishes that boot: no services, no guests resumed, power stays off."""
    with NetnsLab(small_topology("reboot"), "reboot") as lab:
        d = lab.drivers
        d.power.power_off("ctl").result(timeout=10)
        booting = d.power.power_on("ctl")
        _wait(lambda: d.power.state("ctl") is PowerState.BOOTING)
        d.power.power_off("ctl").result(timeout=10)
        booting.result(timeout=10)
        time.sleep(lab.topology.host("ctl").boot_s)
        assert d.power.state("ctl") is PowerState.OFF
        assert not lab.volumes.serving("vol1")
        assert not any(" host/ctl power state=on " in line for line in lab.trace())
