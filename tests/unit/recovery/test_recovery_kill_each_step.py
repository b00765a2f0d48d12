"""The engine killed after every journal step of the shipped nova-drbd host-failure drill
(lab/drills/nova-host-failure.yaml: protocol C storage pair, iSCSI volumes, cmp1 dies at
60 s) and started again on the same inventory and the same lab converges to the end
state of an uninterrupted run, and no instance ever runs in two places.

Issue 4, Safety: "the engine can be killed after any step and run again and converges to
the same end state — a test kills it after each step of the journal and proves it";
"never two running copies of an instance". Nova's evacuate has the same duty: a compute
service restarted mid-evacuation finds the migration record and must not start a
second copy (nova/compute/manager.py `_destroy_evacuated_instances`).

"Ran twice" is judged from the lab's own hypervisor record, not from the engine: the
simulator logs every guest start and stop (`hv/<host> start|stop instance=...`) and every
write a guest issues (`Lab.history()`, with the host and incarnation that issued it).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest
from recovery_fakes import InventoryURL

from stackdrill.api import Lab, LabOptions, WriteOp
from stackdrill.backends.sim import SimBackend
from stackdrill.drill import load_drill
from stackdrill.drill.model import Drill
from stackdrill.faults import HostCrash
from stackdrill.recovery import (
    EngineKilled,
    InstanceState,
    RecoveryConfig,
    RecoveryEngine,
    RecoveryResult,
)

DRILL = Path(__file__).resolve().parents[3] / "lab" / "drills" / "nova-host-failure.yaml"
UNTIL = 600.0
_HV = re.compile(r"^(?P<t>[\d.]+) hv/(?P<host>\S+) (?P<ev>start|stop) .*instance=(?P<inst>\S+)")

Interval = tuple[str, float, float]  # host, started, stopped (inf: still running)


@pytest.fixture(scope="module")
def drill() -> Drill:
    return load_drill(DRILL)


def new_lab(drill: Drill) -> Lab:
    """The drill's lab with its crash scheduled exactly as the drill file says."""
    options = LabOptions(write_interval_s=drill.spec.workload.write_interval_s)
    lab = SimBackend().create(drill.topology, lab_name="kill-test", seed=drill.spec.seed,
                              options=options)
    for step in drill.spec.schedule:
        fault = step.inject
        if isinstance(fault, HostCrash):
            lab.call_at(step.at, partial(lab.inject, fault), f"inject {fault.kind}")
    return lab


def engine(drill: Drill, lab: Lab, db: str, **cfg: object) -> RecoveryEngine:
    config = RecoveryConfig(parallel=4, **cfg)  # type: ignore[arg-type]
    return RecoveryEngine(drill.topology, lab.drivers, lab.clock, db, config)


def intervals(lab: Lab) -> dict[str, list[Interval]]:
    """Per instance, each copy the hypervisors ran: on which host, from when to when."""
    out: dict[str, list[Interval]] = {}
    open_: dict[tuple[str, str], float] = {}
    for line in lab.trace():
        m = _HV.match(line)
        if m is None:
            continue
        key = (m["inst"], m["host"])
        if m["ev"] == "start":
            open_.setdefault(key, float(m["t"]))
        elif key in open_:
            out.setdefault(m["inst"], []).append((m["host"], open_.pop(key), float(m["t"])))
    for (inst, host), began in open_.items():
        out.setdefault(inst, []).append((host, began, float("inf")))
    return out


def overlaps(copies: list[Interval]) -> list[tuple[Interval, Interval]]:
    ordered = sorted(copies, key=lambda c: c[1])
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:] if b[1] < a[2]]


def interleaved_writers(history: list[WriteOp]) -> list[str]:
    """Writes of an older incarnation issued after a newer one began writing: two live
    copies of the same guest, seen from its volume."""
    bad = []
    newest: dict[str, tuple[int, float]] = {}
    for op in sorted(history, key=lambda o: (o.invoked, o.incarnation)):
        inc, since = newest.get(op.instance, (0, 0.0))
        if op.incarnation < inc:
            bad.append(f"{op.instance}: incarnation {op.incarnation} on {op.host} wrote seq "
                       f"{op.seq} at {op.invoked:.1f}s after incarnation {inc} began at "
                       f"{since:.1f}s")
        elif op.incarnation > inc:
            newest[op.instance] = (op.incarnation, op.invoked)
    return bad


def assert_never_twice(lab: Lab, label: str) -> None:
    for inst, copies in intervals(lab).items():
        assert not overlaps(copies), f"{label}: {inst} ran twice at once: {overlaps(copies)}"
    assert not interleaved_writers(lab.history()), (label, interleaved_writers(lab.history()))
    assert all(len(hosts) <= 1 for hosts in lab.observe().running.values()), label


EndState = dict[str, tuple[str, str | None, tuple[str, ...]]]


def end_state(result: RecoveryResult, lab: Lab) -> EndState:
    running = lab.observe().running
    return {o.name: (o.state.value, o.host_after, tuple(running.get(o.name, [])))
            for o in result.instances}


def test_helpers_see_two_copies_when_there_are_two(drill: Drill) -> None:
    """The checks can fail: a second copy started by hand while the first still runs is
    caught both in the hypervisor record and on the volume."""
    lab = new_lab(drill)
    lab.clock.sleep(30)
    lab.drivers.compute.start("web1", "cmp2", {})
    lab.clock.sleep(30)
    assert overlaps(intervals(lab)["web1"])
    fake = [WriteOp("web1", "vol-web1", 2, 1, "x", 10.0, 11.0, "ok", "cmp2"),
            WriteOp("web1", "vol-web1", 1, 9, "y", 12.0, 13.0, "ok", "cmp1")]
    assert interleaved_writers(fake)


def test_killed_after_each_journal_step_converges_and_never_runs_twice(
        drill: Drill, inventory_url: InventoryURL) -> None:
    """For every k in 1..N (N: steps of an uninterrupted run) the engine dies right after
    journal step k; a fresh engine on the same inventory finishes. The end state (state,
    host, where the lab runs it) equals the uninterrupted run's, every acknowledged write
    is on its volume, and at no moment did two copies of an instance run."""
    lab = new_lab(drill)
    reference = engine(drill, lab, inventory_url("ref")).run(until=UNTIL)
    expected = end_state(reference, lab)
    victims = [i.name for i in drill.topology.instances if i.host == "cmp1"]
    assert {expected[v][0] for v in victims} == {InstanceState.RECOVERED.value}
    assert_never_twice(lab, "uninterrupted")
    steps = [r.step for r in reference.journal]
    assert len(steps) >= 3 + 9 * len(victims)  # detection/fencing plus every flow step

    for k in range(1, len(steps) + 1):
        lab = new_lab(drill)
        db = inventory_url(f"kill-{k}")
        with pytest.raises(EngineKilled):
            engine(drill, lab, db, stop_after_steps=k).run(until=UNTIL)
        assert_never_twice(lab, f"killed after step {k} ({steps[k - 1]})")
        result = engine(drill, lab, db).run(until=UNTIL)
        label = f"restarted after step {k} ({steps[k - 1]})"
        assert end_state(result, lab) == expected, label
        assert_never_twice(lab, label)
        starts = {v: sum(1 for c in intervals(lab).get(v, []) if c[0] != "cmp1")
                  for v in victims}
        assert starts == dict.fromkeys(victims, 1), (label, starts)
        stored = {v: lab.stored_records(v) for v in {op.volume for op in lab.history()}}
        lost = [op for op in lab.history() if op.outcome == "ok"
                and (op.seq not in stored[op.volume]
                     or stored[op.volume][op.seq].checksum != op.checksum)
                and not any(o.seq == op.seq and o.volume == op.volume
                            and o.incarnation > op.incarnation for o in lab.history())]
        assert not lost, (label, lost[:3])
