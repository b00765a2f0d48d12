"""What the drill runner and the judge need of a netns lab besides drivers: scheduled
actions on a wall clock, the trace the fencing checks read, probes, and a final read
(quiesce, then evidence) that no volume is ahead of."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future

import pytest
from netns_helpers import needs_root, small_topology

from stackdrill.backends.base import LabOptions, PowerState
from stackdrill.backends.netns.drivers import WallClock
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.drill.judge import fencing_events
from stackdrill.drill.runner import Evidence
from stackdrill.operations import LvmCommand, ProbeCommand


def test_wall_clock_wait_returns_only_the_callers_futures() -> None:
    """concurrent.futures semantics: the done ones among those given, none of the clock's."""
    clock = WallClock()
    done: Future[int] = Future()
    done.set_result(1)
    pending: Future[int] = Future()
    assert clock.wait([done, pending], timeout=1.0) == {done}
    t0 = time.monotonic()
    assert clock.wait([pending], timeout=0.2) == set()
    assert 0.15 <= time.monotonic() - t0 < 1.0


def test_a_failing_scheduled_action_is_raised_where_the_engine_waits() -> None:
    """A fault that could not be injected must fail the drill, not let it pass without the
    fault: the error raises in the thread sleeping or waiting on the clock, once."""
    clock = WallClock()
    threading.Timer(0.1, clock.alarm, args=(RuntimeError("nft failed"),)).start()
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="nft failed"):
        clock.sleep(5.0)
    assert time.monotonic() - t0 < 2.0  # woken, not slept through
    clock.sleep(0.01)  # raised once only
    pending: Future[None] = Future()
    clock.alarm(RuntimeError("heal failed"))
    with pytest.raises(RuntimeError, match="heal failed"):
        clock.wait([pending], timeout=5.0)


@needs_root
@pytest.mark.netns
def test_call_at_runs_on_time_and_never_after_destroy() -> None:
    lab = NetnsLab(small_topology("sched", with_volume=False), "sched", heartbeats=False)
    fired: list[float] = []
    try:
        lab.call_at(lab.clock.now() + 0.3, lambda: fired.append(lab.clock.now()), "soon")
        lab.call_at(lab.clock.now() + 0.1, lambda: 1 / 0, "broken")
        with pytest.raises(RuntimeError, match="broken"):
            lab.clock.sleep(1.0)
        lab.clock.sleep(0.5)
        assert len(fired) == 1 and fired[0] >= 0.3
        lab.call_at(lab.clock.now() + 0.2, lambda: fired.append(-1.0), "too late")
    finally:
        lab.destroy()
    time.sleep(0.4)
    assert fired[-1] != -1.0
    assert any(re.search(r" lab step-failed .*label=broken", line) for line in lab.trace())


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
def test_trace_carries_power_and_hypervisor_lines_the_fencing_check_reads() -> None:
    """The judge rebuilds fencing from the trace: host/<h> power state=..., hv/<h> start/stop.
    A crash, a start elsewhere and a returning host show up as such, and a booting host
    takes its topology's boot_s."""
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
        events = fencing_events(lab.trace())
    kinds = [(e.kind, e.host, e.instance, e.old_host) for e in events]
    assert kinds[0] == ("instance_started", "cmp1", "web1", None)
    assert ("fenced_confirmed", "cmp1", None, None) in kinds
    assert ("instance_stopped", "cmp1", "web1", None) in kinds
    moved = kinds.index(("instance_started", "cmp2", "web1", "cmp1"))
    assert kinds.index(("fenced_confirmed", "cmp1", None, None)) < moved
    assert kinds[-1] == ("unfenced", "cmp1", None, None)


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
    probe = evidence.commands["p"]
    assert probe["reachable"] and probe["full_size_ok"] and probe["path_mtu"] == 1450
    assert probe["arp_mac"] == "fa:16:3e:00:00:01" == probe["expected_mac"]
    assert not evidence.commands["l"]["ok"]
    assert "no lvm" in evidence.commands["l"]["detail"]
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
