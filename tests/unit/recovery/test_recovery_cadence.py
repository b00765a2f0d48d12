"""When the engine looks again (recovery/cadence.py). Its monitor reads every host's
health once per poll interval, not on every completed driver call: on a real lab each
read is a command per host, and with many flows in flight the engine wakes many times a
second. A flow slot that frees up between polls still goes to the next waiting instance
at once."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from recovery_fakes import FakeLab, InventoryURL
from test_recovery_capacity import assert_each_started_once_after_fencing, generated, rack

from stackdrill.api import HostHealth
from stackdrill.backends.sim import SimBackend
from stackdrill.faults.catalogue import HostCrash
from stackdrill.recovery import InstanceState, JournalStep, RecoveryConfig, RecoveryEngine


def test_the_monitor_reads_each_host_once_per_poll_while_flows_run(tmp_path: Path) -> None:
    """A simulated host loss, 10 evacuations at once onto one host: while they run,
    their driver calls complete many times a second, each waking the engine. Its reads of
    a host's health stay within one per poll interval, plus one for each change it reacts
    to at once (a host's journaled step, a fence answered)."""
    topo = generated(2)
    lab = SimBackend().create(topo, lab_name="cadence", seed=1)
    reads: dict[str, list[float]] = {}
    wakes: list[float] = []
    health, wait = lab.drivers.compute.health, lab.clock.wait

    def read(host: str) -> HostHealth:
        reads.setdefault(host, []).append(lab.clock.now())
        return health(host)

    def woken(ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        done = wait(ops, timeout)
        wakes.append(lab.clock.now())
        return done

    lab.drivers.compute.health = read  # type: ignore[method-assign]
    lab.clock.wait = woken  # type: ignore[method-assign]
    lab.call_at(60.0, lambda: lab.inject(HostCrash(host="cmp01", power_back=False)), "crash")
    config = RecoveryConfig()
    engine = RecoveryEngine(topo, lab.drivers, lab.clock,
                            f"sqlite:///{tmp_path}/inv.sqlite", config)
    result = engine.run(until=3600)
    lab.destroy()
    moved = [o for o in result.instances if o.host_before == "cmp01"]
    assert len(moved) == 10 and all(o.state is InstanceState.RECOVERED for o in moved)
    journal = result.journal
    begin = min(r.time for r in journal if r.step == JournalStep.RESERVED.value)
    end = max(r.time for r in journal if r.step == JournalStep.DONE.value)
    polls = (end - begin) / config.poll_s
    host_steps = sum(1 for r in journal if r.instance is None and begin <= r.time <= end)
    assert len([t for t in wakes if begin <= t <= end]) > 2 * polls  # woken between polls
    for host, times in sorted(reads.items()):
        assert len([t for t in times if begin <= t <= end]) <= polls + 1 + host_steps, host


def test_a_slot_freed_between_polls_goes_to_the_next_instance_at_once(
        inventory_url: InventoryURL) -> None:
    """One storage slot, a 5 s poll: each flow's volumes are ready at some moment between
    polls, and the next waiting instance is reserved at that very moment."""
    topo = rack(instances=6, targets=1, backends=1, storage_vcpus=16)
    lab = FakeLab(topo)
    lab.clock.at(60, lambda: lab.crash("cmp00"))
    engine = RecoveryEngine(topo, lab.drivers, lab.clock, inventory_url("freed"),
                            RecoveryConfig(per_storage_backend=1, poll_s=5.0))
    result = engine.run(until=3600)
    assert_each_started_once_after_fencing(lab, result)
    ready = [r.time for r in result.journal if r.step == JournalStep.STORAGE_READY.value]
    reserved = [r.time for r in result.journal if r.step == JournalStep.RESERVED.value]
    assert len(ready) == len(reserved) == 6
    assert reserved[1:] == ready[:-1]


def test_a_power_off_that_answers_at_once_is_concluded_without_lab_time_passing(
        inventory_url: InventoryURL) -> None:
    """A power controller that confirms at once (its future is done when returned): the
    engine must look again to conclude the fence, not wait on that done future, which
    would wake it at once, again and again, at one lab moment (FakeClock fails such a
    spin). The guests are evacuated after the power-off."""
    topo = rack(instances=4, targets=1, backends=1, storage_vcpus=16)
    lab = FakeLab(topo)

    def at_once(host: str) -> Future[None]:
        lab.crash(host)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    lab.drivers.power.power_off = at_once  # type: ignore[method-assign]
    lab.clock.at(60, lambda: lab.crash("cmp00"))
    result = RecoveryEngine(topo, lab.drivers, lab.clock, inventory_url("at-once")).run(3600)
    assert_each_started_once_after_fencing(lab, result)
