"""What the drill runner and the judge need of a netns lab besides drivers: scheduled
actions on a wall clock, the trace the fencing checks read, probes, and a final read
(quiesce, then evidence) that no volume is ahead of."""

from __future__ import annotations

import threading
import time

import pytest
from netns_helpers import needs_root, small_topology

from stackdrill.api import (
    ActionFailed,
    GuestStarted,
    GuestStopped,
    LabOptions,
    PowerChanged,
    PowerState,
    ScheduledActionFailed,
)
from stackdrill.api.commands import LvmCommand, ProbeCommand
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.checks import Evidence, fencing_order


@needs_root
@pytest.mark.netns
def test_call_at_runs_on_time_and_never_after_destroy() -> None:
    lab = NetnsLab(small_topology("sched", with_volume=False), "sched", heartbeats=False)
    fired: list[float] = []
    try:
        lab.call_at(lab.clock.now() + 0.3, lambda: fired.append(lab.clock.now()), "soon")
        lab.call_at(lab.clock.now() + 0.1, lambda: 1 / 0, "broken")
        with pytest.raises(ScheduledActionFailed, match="broken"):
            lab.clock.sleep(1.0)
        lab.clock.sleep(0.5)
        assert len(fired) == 1 and fired[0] >= 0.3
        lab.call_at(lab.clock.now() + 0.2, lambda: fired.append(-1.0), "too late")
    finally:
        lab.destroy()
    time.sleep(0.4)
    assert fired[-1] != -1.0
    assert any(isinstance(t.event, ActionFailed) and t.event.label == "broken"
               for t in lab.events())


@needs_root
@pytest.mark.netns
def test_destroy_waits_for_an_action_in_flight() -> None:
    """An action still running (a boot, a probe) finishes before the namespaces go, so it
    cannot recreate anything after the cleanup."""
    lab = NetnsLab(small_topology("inflight", with_volume=False), "inflight",
                   heartbeats=False)
    started = threading.Event()
    finished: list[bool] = []

    def slow() -> None:
        started.set()
        time.sleep(0.5)
        finished.append(True)

    lab.call_at(0.0, slow, "slow")
    assert started.wait(5)
    lab.destroy()
    assert finished == [True]


@needs_root
@pytest.mark.netns
def test_events_carry_the_power_and_guest_changes_the_fencing_check_reads() -> None:
    """The judge rebuilds fencing from the lab's events: power changes, guests started and
    stopped. A crash, a start elsewhere and a returning host show up as such, and a booting
    host takes its topology's boot_s."""
    with NetnsLab(small_topology("trace"), "trace",
                  options=LabOptions(write_interval_s=0.05)) as lab:
        d = lab.drivers
        d.power.power_off("cmp1").result(timeout=10)
        path = d.storage.prepare("vol1", "cmp2", failed=["cmp1"]).result(timeout=10)
        d.compute.start("web1", "cmp2", {"vol1": path.path}).result(timeout=20)
        d.compute.set_boot_hook(lambda _host, guests: guests)
        t0 = time.monotonic()
        d.power.power_on("cmp1").result(timeout=10)
        assert time.monotonic() - t0 >= lab.topology.host("cmp1").boot_s
        assert d.power.state("cmp1") is PowerState.ON
        events = [t.event for t in lab.events()
                  if isinstance(t.event, (PowerChanged, GuestStarted, GuestStopped))]
        assert fencing_order(lab.events()).ok
    assert events[0] == GuestStarted("cmp1", "web1", 1)
    off = events.index(PowerChanged("cmp1", PowerState.OFF, PowerState.ON, "fenced"))
    assert GuestStopped("cmp1", "web1", 1, "host-off") in events
    moved = events.index(GuestStarted("cmp2", "web1", 2))
    assert off < moved
    assert events[-1] == PowerChanged("cmp1", PowerState.ON, PowerState.BOOTING, "booted")


@needs_root
@pytest.mark.netns
def test_probe_and_unsupported_commands_and_the_final_read() -> None:
    """An overlay probe from inside an instance finds the peer's MAC and the 1450 path MTU;
    an LVM command is recorded as failed (there is no LVM here); the runner's final read
    (quiesce, then evidence) finds every acknowledged write on the volume and the frozen
    workload still running."""
    topo = small_topology("probe")
    data = topo.model_dump()
    data["instances"] = [*data["instances"], {
        **data["instances"][0], "name": "web2", "host": "cmp2", "mac": "fa:16:3e:00:00:02",
        "ip": "10.100.0.11", "volumes": []}]
    topo = type(topo).model_validate(data)
    lab = NetnsLab(topo, "probe", options=LabOptions(write_interval_s=0.05))
    try:
        lab.execute(ProbeCommand(src="web2", dst="web1", label="p"), "p")
        lab.execute(LvmCommand(host="ctl", op="lvcreate", vg="vg1", lv="x", extents=1), "l")
        time.sleep(0.3)
        lab.quiesce()
        evidence = Evidence.collect(lab)
    finally:
        lab.destroy()
    probe = evidence.commands["p"].probe
    assert probe is not None
    assert probe.reachable and probe.full_size_ok and probe.path_mtu == 1450
    assert probe.arp_mac == "fa:16:3e:00:00:01" == probe.expected_mac
    assert not evidence.commands["l"].ok
    assert "no lvm" in evidence.commands["l"].detail
    acked = [o for o in evidence.history if o.outcome == "ok"]
    stored = evidence.stored["vol1"]
    assert acked and all(stored[o.seq].checksum == o.checksum for o in acked)
    invoked = {o.seq for o in evidence.history}
    assert set(stored) <= invoked, "a record on the volume that no write invoked"
    assert evidence.observation.running["web1"] == ["cmp1"]


@needs_root
@pytest.mark.netns
def test_lab_time_starts_when_the_lab_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the simulator, a drill's `at: 3` means 3 s after the lab is up: a slow
    bring-up (a loaded CI machine) must not make the schedule run early."""
    from stackdrill.backends.netns.volumes import Volumes

    real = Volumes.create_files

    def slow(self: Volumes, sizes: dict[str, int]) -> None:
        time.sleep(1.0)
        real(self, sizes)

    monkeypatch.setattr(Volumes, "create_files", slow)
    with NetnsLab(small_topology("late"), "late") as lab:
        assert lab.bringup_s >= 1.0
        assert lab.clock.now() < 0.5
        up = [line for line in lab.trace() if " lab up " in line]
        assert up and float(up[0].split()[0]) < 0.5
        assert all(float(line.split()[0]) >= 0.0 for line in lab.trace())
