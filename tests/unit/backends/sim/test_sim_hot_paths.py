"""The simulator's hot paths stay cheap without changing what they answer: the one-way
delay is computed once per (pair, network, size) until a rate limit changes; a host's
`up`/`powered` follow every assignment of its power; the kernel's log records what the
trace writer's `note` would; the cyclic GC does not run while simulated events run."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest

from stackdrill.api import PowerState
from stackdrill.api.events import TraceWriter
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel, SimClock
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology import Host, Network, NetworkPurpose, Role, Topology

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
