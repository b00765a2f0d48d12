"""The instance monitor on the simulator (drbd-pair, lab/drills/instance-crash.yaml): an
instance killed on a host that stays up is restarted there once, through a journaled
flow that a killed engine resumes to the same end state; never when the monitor is off,
never on a host whose guests() fails, never racing host-level recovery; given up after
`instance_max_restarts` restarts within the window."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from itertools import pairwise
from pathlib import Path

import pytest
from recovery_fakes import InventoryURL

from stackdrill.api import (
    ComputeDriver,
    DriverError,
    Drivers,
    GuestInfo,
    GuestStarted,
    GuestStopped,
    HostHealth,
    Lab,
    Witness,
)
from stackdrill.backends.sim import SimBackend
from stackdrill.faults import Fault, HostCrash, InstanceCrash
from stackdrill.recovery import (
    EngineKilled,
    InstanceState,
    JournalStep,
    RecoveryConfig,
    RecoveryEngine,
    RecoveryResult,
)
from stackdrill.recovery.taskbase import FlowKind
from stackdrill.recovery.tasks import build_flow
from stackdrill.topology import Topology, load_topology

PAIR = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "drbd-pair.yaml"
UNTIL = 150.0
KILL_A = InstanceCrash(instance="inst-a")


@pytest.fixture(scope="module")
def pair() -> Topology:
    return load_topology(PAIR)


def new_lab(topo: Topology, faults: Iterable[tuple[float, Fault]] = ((30.0, KILL_A),)) -> Lab:
    lab = SimBackend().create(topo, lab_name="instance-monitor", seed=1)
    for at, fault in faults:
        lab.call_at(at, lambda f=fault: lab.inject(f), f"inject {fault.kind}")
    return lab


def engine(topo: Topology, lab: Lab, db: str, drivers: Drivers | None = None,
           **cfg: object) -> RecoveryEngine:
    config = RecoveryConfig(parallel=2, stop_when_idle=False, **cfg)  # type: ignore[arg-type]
    return RecoveryEngine(topo, drivers or lab.drivers, lab.clock, db, config)


def copies(lab: Lab) -> dict[str, list[tuple[str, float, float]]]:
    """Per instance, each copy the hypervisors ran: (host, started, stopped or inf)."""
    out: dict[str, list[tuple[str, float, float]]] = {}
    open_: dict[str, tuple[str, float]] = {}
    for traced in lab.events():
        ev = traced.event
        if isinstance(ev, GuestStarted) and traced.at > 0:
            open_[ev.instance] = (ev.host, traced.at)
        elif isinstance(ev, GuestStopped) and ev.instance in open_:
            host, began = open_.pop(ev.instance)
            out.setdefault(ev.instance, []).append((host, began, traced.at))
    for inst, (host, began) in open_.items():
        out.setdefault(inst, []).append((host, began, float("inf")))
    return out


def never_twice(lab: Lab) -> None:
    assert all(len(hosts) <= 1 for hosts in lab.observe().running.values())
    for inst, runs in copies(lab).items():
        ordered = sorted(runs, key=lambda r: r[1])
        assert all(b[1] >= a[2] for a, b in pairwise(ordered)), (inst, ordered)


def restarts_reserved(result: RecoveryResult, name: str) -> int:
    return sum(1 for r in result.journal if r.instance == name
               and r.step == JournalStep.RESERVED.value
               and r.detail.get("kind") == FlowKind.RESTART.value)


def test_a_killed_instance_is_restarted_on_its_host_once(
        pair: Topology, inventory_url: InventoryURL) -> None:
    lab = new_lab(pair)
    result = engine(pair, lab, inventory_url("i")).run(until=UNTIL)
    a = result.instance("inst-a")
    assert (a.state, a.host_before, a.host_after, a.restarts) == (
        InstanceState.RESTARTED, "cmp1", "cmp1", 1)
    assert result.instance("inst-b").state is InstanceState.RUNNING
    assert dict(lab.observe().running) == {"inst-a": ["cmp1"], "inst-b": ["cmp1"]}
    (again,) = copies(lab)["inst-a"]  # one copy started after the death, still running
    assert (again[0], again[2]) == ("cmp1", float("inf")) and "inst-b" not in copies(lab)
    steps = [r.step for r in result.journal if r.instance == "inst-a"]
    flow = [t.step.value for t in build_flow(FlowKind.RESTART)]
    assert flow[:2] == [JournalStep.RESERVED, JournalStep.SOURCE_STOPPED]  # dead copy first
    assert steps == [*flow[:3], JournalStep.START_REQUESTED, *flow[3:]]
    assert not result.failed_hosts  # nothing host-level happened
    assert any(e.kind == "instance-down" and e.instance == "inst-a" for e in result.events)


def test_with_the_monitor_off_it_stays_dead(pair: Topology, inventory_url: InventoryURL) -> None:
    lab = new_lab(pair)
    result = engine(pair, lab, inventory_url("i"), instance_monitor=False).run(until=UNTIL)
    assert result.instance("inst-a").state is InstanceState.RUNNING  # the engine never knew
    assert lab.observe().running["inst-a"] == []
    assert not [r for r in result.journal if r.instance == "inst-a"]


class _Unreachable(ComputeDriver):
    """The lab's compute driver, but guests() of `host` fails (its agent cannot answer)."""

    def __init__(self, inner: ComputeDriver, host: str) -> None:
        self.inner, self.host = inner, host

    def health(self, host: str) -> HostHealth:
        return self.inner.health(host)

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        return self.inner.witnesses(host)

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        if host != self.host:
            return self.inner.guests(host)
        failed: Future[list[GuestInfo]] = Future()
        failed.set_exception(DriverError(f"cannot reach the compute service on {host}"))
        return failed

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        return self.inner.start(instance, host, volumes)

    def destroy(self, instance: str, host: str) -> Future[None]:
        return self.inner.destroy(instance, host)

    def verify(self, instance: str, host: str) -> Future[bool]:
        return self.inner.verify(instance, host)


def test_a_host_whose_guests_call_fails_is_left_alone(
        pair: Topology, inventory_url: InventoryURL) -> None:
    lab = new_lab(pair)
    d = lab.drivers
    drivers = Drivers(d.power, _Unreachable(d.compute, "cmp1"), d.storage, d.network)
    result = engine(pair, lab, inventory_url("i"), drivers).run(until=UNTIL)
    assert restarts_reserved(result, "inst-a") == 0
    assert lab.observe().running["inst-a"] == []


def test_a_host_that_fails_meanwhile_is_left_to_host_recovery(
        pair: Topology, inventory_url: InventoryURL) -> None:
    """inst-a dies at 30 s, its host at 33 s, while its restart is under way: the restart
    is abandoned, the host is fenced and both instances are evacuated to cmp2, each
    started there once, never two copies at a time."""
    lab = new_lab(pair, [(30.0, KILL_A), (33.0, HostCrash(host="cmp1", power_back=False))])
    result = engine(pair, lab, inventory_url("i")).run(until=300)
    for name in ("inst-a", "inst-b"):
        outcome = result.instance(name)
        assert (outcome.state, outcome.host_after) == (InstanceState.RECOVERED, "cmp2"), outcome
        assert [r[0] for r in copies(lab)[name]].count("cmp2") == 1
    assert result.failed_hosts == ["cmp1"]
    never_twice(lab)


def test_given_up_after_the_restart_limit_within_the_window(
        pair: Topology, inventory_url: InventoryURL) -> None:
    lab = new_lab(pair, [(30.0, KILL_A), (70.0, KILL_A)])
    result = engine(pair, lab, inventory_url("i"), instance_max_restarts=1).run(until=UNTIL)
    a = result.instance("inst-a")
    assert (a.state, a.host_after, a.restarts) == (InstanceState.FAILED, None, 1), a
    assert "after 1 restart(s) within 600 s" in a.reason
    assert restarts_reserved(result, "inst-a") == 1
    assert [r.step for r in result.journal][-1] == JournalStep.RESTARTS_EXHAUSTED
    assert lab.observe().running["inst-a"] == []
    assert result.instance("inst-b").state is InstanceState.RUNNING


def test_restarts_older_than_the_window_do_not_count(
        pair: Topology, inventory_url: InventoryURL) -> None:
    lab = new_lab(pair, [(30.0, KILL_A), (70.0, KILL_A)])
    result = engine(pair, lab, inventory_url("i"), instance_max_restarts=1,
                    instance_restart_window_s=20.0).run(until=UNTIL)
    assert result.instance("inst-a").restarts == 2
    assert lab.observe().running["inst-a"] == ["cmp1"]


def test_killed_after_each_journal_step_the_restart_converges_and_never_runs_twice(
        pair: Topology, inventory_url: InventoryURL) -> None:
    """For every step k of an uninterrupted restart the engine dies right after it and a
    fresh engine on the same inventory finishes: the same end state, inst-a started once
    after its death, never two copies, no acknowledged write lost. (Killed after the start
    was requested, the new engine waits up to op_timeout_s for the guest to show up before
    it sends the start again: hence the long run.)"""
    until = 600.0
    lab = new_lab(pair)
    reference = engine(pair, lab, inventory_url("ref")).run(until=until)
    expected = {o.name: (o.state, o.host_after, o.restarts) for o in reference.instances}
    steps = [r.step for r in reference.journal]
    assert len(steps) == 9
    for k in range(1, len(steps) + 1):
        lab = new_lab(pair)
        db = inventory_url(f"kill-{k}")
        with pytest.raises(EngineKilled):
            engine(pair, lab, db, stop_after_steps=k).run(until=until)
        never_twice(lab)
        result = engine(pair, lab, db).run(until=until)
        label = f"restarted after step {k} ({steps[k - 1]})"
        assert {o.name: (o.state, o.host_after, o.restarts)
                for o in result.instances} == expected, label
        assert dict(lab.observe().running) == {"inst-a": ["cmp1"], "inst-b": ["cmp1"]}, label
        assert len(copies(lab)["inst-a"]) == 1, (label, copies(lab))
        never_twice(lab)
        stored = lab.stored_records("vol-a")
        lost = [op for op in lab.history() if op.outcome == "ok" and op.volume == "vol-a"
                and (op.seq not in stored or stored[op.seq].checksum != op.checksum)]
        assert not lost, (label, lost[:3])
