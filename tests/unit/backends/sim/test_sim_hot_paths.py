"""The simulator's hot paths stay cheap without changing what they answer: the one-way
delay is computed once per (pair, network, size) until a rate limit changes; a host's
`up`/`powered` follow every assignment of its power; the kernel's log records what the
trace writer's `note` would; the cyclic GC does not run while simulated events run, and
its full collections are spaced while a simulated lab exists."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest

from stackdrill.api import LabOptions, PowerState
from stackdrill.api.events import TraceWriter
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import FULL_COLLECTION_SPACING, Kernel, SimClock
from stackdrill.backends.sim.lab import SimLab
from stackdrill.backends.sim.lvm_meta import VgMetadata, _without
from stackdrill.backends.sim.network import Underlay
from stackdrill.backends.sim.overlay import OverlaySim
from stackdrill.topology import Host, Network, NetworkPurpose, Overlay, Role, Topology

NODES = ("a", "b")


def lab() -> tuple[Kernel, dict[str, SimHost], Underlay]:
    kernel = Kernel(1)
    specs = tuple(Host(name=n, roles=(Role.COMPUTE,)) for n in NODES)
    net = Network(name="n", purposes=(NetworkPurpose.STORAGE,), cidr="10.0.0.0/24",
                  bandwidth_mbit=1000, addresses={n: f"10.0.0.{j + 1}" for j, n in
                                                  enumerate(NODES)})
    hosts = {h.name: SimHost(kernel, h) for h in specs}
    return kernel, hosts, Underlay(kernel, Topology(name="t", hosts=specs, networks=(net,)),
                                   hosts)


def test_delay_is_computed_once_until_a_rate_limit_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel, _hosts, u = lab()
    computed: list[tuple[str, str]] = []
    real = u.bottleneck_mbit

    def counting(a: str, b: str, network: str) -> float:
        computed.append((a, b))
        return real(a, b, network)

    monkeypatch.setattr(u, "bottleneck_mbit", counting)
    fast = [u.delay("a", "b", "n", 4160) for _ in range(1000)]
    assert len(computed) == 1 and len(set(fast)) == 1
    u.set_rate("b", "n", 10.0)  # tbf on b's link: 100x slower than the network
    slow = u.delay("a", "b", "n", 4160)
    assert len(computed) == 2
    assert slow - u.delay("a", "b", "n", 0) == pytest.approx(4160 * 8 / 10e6)
    assert slow > fast[0]


@pytest.mark.parametrize("state", list(PowerState))
def test_up_and_powered_follow_every_power_assignment(state: PowerState) -> None:
    _kernel, hosts, _u = lab()
    host = hosts["a"]
    host.power = state  # as tests and the lab's listeners do, without `_set`
    assert host.up is (state is PowerState.ON)
    assert host.powered is (state in (PowerState.ON, PowerState.HUNG, PowerState.BOOTING))


def test_power_changes_through_the_model_update_up() -> None:
    kernel, hosts, u = lab()
    hosts["b"].crash()
    assert not hosts["b"].up and not u.connected("a", "b", "n")
    hosts["b"].power_on()
    assert hosts["b"].powered and not hosts["b"].up
    kernel.run_until(hosts["b"].spec.boot_s + 1)
    assert hosts["b"].up and u.connected("a", "b", "n")


class Colour(Enum):
    RED = "red"


FIELDS: dict[str, Any] = {"z": 1.5, "a": Colour.RED, "m": ["x", 2], "s": {"b", "a"},
                          "d": {"k": 2.0}, "n": None, "t": True, "i": 7}


def test_kernel_log_records_what_the_trace_writer_note_would() -> None:
    kernel = Kernel(1)
    reference = TraceWriter(lambda: 0.0)
    kernel.log("comp/x", "thing", **FIELDS)
    reference.note("comp/x", "thing", **FIELDS)
    assert kernel.tracer.events()[0].event == reference.events()[0].event
    assert kernel.tracer.lines() == reference.lines()


@pytest.fixture
def collections_started() -> Iterator[list[int]]:
    """Generations of the cyclic collections started while the fixture is active."""
    started: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(note)
    yield started
    gc.callbacks.remove(note)
    if not was:
        gc.disable()


def allocate(kernel: Kernel, keep: list[Any], count: int, started: list[int]) -> list[int]:
    """A model that keeps many containers alive (as write histories do), at time 1; what
    `started` holds at time 1.5, still inside the event loop, is returned (filled then)."""
    seen: list[int] = []
    kernel.call_later(1.0, lambda: keep.extend([i] for i in range(count)))
    kernel.call_later(1.5, lambda: seen.extend(started))
    return seen


def test_no_cyclic_collection_while_events_run(collections_started: list[int]) -> None:
    kernel = Kernel(1)
    keep: list[Any] = []
    # 50 k containers: ~70 times the young generation's threshold (700)
    seen = allocate(kernel, keep, 50_000, collections_started)
    collections_started.clear()  # what setting up the kernel triggered
    kernel.run_until(2.0)
    assert len(keep) == 50_000
    assert seen == []
    assert gc.isenabled()  # as it was before the run


def test_no_cyclic_collection_while_the_clock_waits(collections_started: list[int]) -> None:
    kernel = Kernel(1)
    clock = SimClock(kernel)
    keep: list[Any] = []
    seen = allocate(kernel, keep, 50_000, collections_started)
    done = kernel.future(kernel.env.timeout(3.0))
    collections_started.clear()
    assert clock.wait([done]) == {done}
    assert len(keep) == 50_000 and seen == [] and gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off() -> None:
    kernel = Kernel(1)
    gc.disable()
    try:
        kernel.run_until(1.0)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.fixture
def no_lab() -> tuple[int, ...]:
    """The thresholds with no simulated lab left (earlier tests' kernels are garbage)."""
    gc.collect()
    return gc.get_threshold()


def test_full_collections_are_spaced_while_a_lab_exists_and_restored_after(
        no_lab: tuple[int, ...]) -> None:
    before = no_lab
    first, second = Kernel(1), Kernel(2)
    spaced = gc.get_threshold()
    assert spaced[2] == before[2] * FULL_COLLECTION_SPACING
    assert spaced[:2] == before[:2]  # young and middle generations as they were
    first.close()
    assert gc.get_threshold() == spaced  # the other lab still exists
    first.close()  # closing twice releases once
    assert gc.get_threshold() == spaced
    second.close()
    assert gc.get_threshold() == before


def test_a_lab_nobody_destroys_restores_the_spacing_when_collected(no_lab: tuple[int, ...]) -> None:
    before = no_lab
    kernel = Kernel(1)
    assert gc.get_threshold() != before
    del kernel
    gc.collect()
    assert gc.get_threshold() == before


def test_thresholds_someone_set_meanwhile_are_kept(no_lab: tuple[int, ...]) -> None:
    before = no_lab
    kernel = Kernel(1)
    try:
        gc.set_threshold(5000, 20, 30)
        kernel.close()
        assert gc.get_threshold() == (5000, 20, 30)
    finally:
        gc.set_threshold(*before)


def test_a_destroyed_sim_lab_gives_the_spacing_back(no_lab: tuple[int, ...]) -> None:
    before = no_lab
    topo = Topology(name="t", hosts=(Host(name="a", roles=(Role.COMPUTE,)),))
    lab = SimLab(topo, lab_name="spacing", seed=1, options=LabOptions())
    assert gc.get_threshold() != before
    lab.destroy()
    assert gc.get_threshold() == before


# ---------------------------------------------------------------- overlay controller

OVERLAY_HOSTS = ("a", "b", "c")
SHARED_MAC = "fa:16:3e:00:00:99"  # two ports with one MAC (a cloned guest): the later name wins


def overlay_lab() -> OverlaySim:
    kernel = Kernel(1)
    hosts_spec = tuple(Host(name=h, roles=(Role.COMPUTE,)) for h in OVERLAY_HOSTS)
    net = Network(name="tun", purposes=(NetworkPurpose.TUNNEL,), cidr="10.0.0.0/24",
                  addresses={h: f"10.0.0.{j + 1}" for j, h in enumerate(OVERLAY_HOSTS)})
    spec = Overlay(name="ov", vni=7, network="tun", cidr="192.168.5.0/24")
    topo = Topology(name="t", hosts=hosts_spec, networks=(net,), overlays=(spec,))
    hosts = {h.name: SimHost(kernel, h) for h in hosts_spec}
    return OverlaySim(kernel, spec, Underlay(kernel, topo, hosts), hosts)


def whole_fdb(ov: OverlaySim, host: str) -> dict[str, str]:
    """What the controller wants on `host`, from every port (the rule written out)."""
    return {p.mac: ov.vteps[p.host].address
            for p in sorted(ov.ports.values(), key=lambda p: p.name) if p.host != host}


def settle(ov: OverlaySim) -> None:
    ov.kernel.run_until(ov.kernel.now + 1.0)


def test_each_vtep_gets_what_the_controller_wants_through_moves_clones_and_resets() -> None:
    ov = overlay_lab()
    for i, host in enumerate(("a", "b", "c", "a", "b")):
        ov.plug(f"p{i}", f"fa:16:3e:00:00:{i:02x}", f"192.168.5.{i + 10}", host)
    ov.plug("q1", SHARED_MAC, "192.168.5.50", "a")
    ov.plug("q2", SHARED_MAC, "192.168.5.51", "b")
    settle(ov)
    assert ov.vteps["c"].static[SHARED_MAC] == "10.0.0.2"  # q2, after q1 by name
    assert ov.vteps["b"].static[SHARED_MAC] == "10.0.0.1"  # its own q2 left out: q1
    ov.stale_fdb("c", True)
    ov.unplug("p0", "a")
    ov.plug("p1", "fa:16:3e:00:00:01", "192.168.5.11", "c")  # moved from b
    ov.unplug("q2", "b")
    ov.recreate_device("b")  # an empty FDB, filled again by a resync
    ov.resync("b")
    settle(ov)
    assert ov.vteps["c"].static != whole_fdb(ov, "c")  # stale: still the old entries
    ov.stale_fdb("c", False)
    settle(ov)
    for host in OVERLAY_HOSTS:
        assert ov.vteps[host].static == whole_fdb(ov, host), host
    assert ov.vteps["c"].static[SHARED_MAC] == "10.0.0.1"  # q1, the only one left


def test_a_push_after_one_plug_looks_up_only_that_mac(monkeypatch: pytest.MonkeyPatch) -> None:
    ov = overlay_lab()
    for i in range(30):
        ov.plug(f"p{i:02d}", f"fa:16:3e:00:01:{i:02x}", f"192.168.5.{i + 10}",
                OVERLAY_HOSTS[i % 3])
    settle(ov)
    looked_up: list[str] = []
    real = ov._desired

    def counting(mac: str, host: str) -> str | None:
        looked_up.append(mac)
        return real(mac, host)

    monkeypatch.setattr(ov, "_desired", counting)
    ov.plug("new", "fa:16:3e:00:02:00", "192.168.5.99", "a")
    settle(ov)
    assert looked_up == ["fa:16:3e:00:02:00"] * len(OVERLAY_HOSTS)  # not 31 per host
    assert ov.vteps["b"].static["fa:16:3e:00:02:00"] == "10.0.0.1"


# ---------------------------------------------------------------- LVM free ranges

def test_free_ranges_carried_through_creates_are_the_ranges_counted_afresh() -> None:
    md = VgMetadata("vg", 1, 1024, 100)
    md = md.with_lv("hole", ((10, 5),))  # a gap below it, allocated first
    for i in range(12):
        md = md.with_lv(f"lv{i}", md.allocate(3 + i % 4)).bumped()
        fresh = VgMetadata("vg", md.seqno, 1024, 100, lvs=dict(md.lvs))
        assert md.free_extents() == fresh.free_extents()
        assert md.allocate(7) == fresh.allocate(7)
    md = md.without_lv("lv3")
    assert md.allocate(4) == VgMetadata("vg", 1, 1024, 100, lvs=dict(md.lvs)).allocate(4)


def test_extents_leave_the_free_ranges_wherever_they_fall() -> None:
    gaps = ((0, 10), (20, 10), (40, 60))
    assert _without(gaps, ((5, 20),)) == ((0, 5), (25, 5), (40, 60))
    assert _without(gaps, ((0, 10), (45, 5))) == ((20, 10), (40, 5), (50, 50))
    assert _without(gaps, ((95, 10),)) == ((0, 10), (20, 10), (40, 55))
    assert _without(gaps, ()) == gaps
