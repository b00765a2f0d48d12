"""Issue 17, engine CPU: the pump looks at every flow several times a tick; instead of
taking each pending future's lock it reads a flag that the future's done callback sets.
The flag must follow the future the generator waits on now: set when that one completes
(at once if it already has), never by a future it stopped waiting on. And a flow that
ended outside the pump (undone by a throw when its volume server was fenced) must leave
the flows in flight at the next pump, not when its old future happens to complete: until
then it holds a flow slot."""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from recovery_fakes import FakeLab, InventoryURL

from stackdrill.recovery import RecoveryConfig, RecoveryEngine
from stackdrill.recovery.state import Proc
from stackdrill.recovery.taskbase import Sleep
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"


def idle() -> Generator[Any, Any, None]:
    yield Sleep(1.0)


def test_a_proc_is_woken_when_the_future_it_waits_on_completes() -> None:
    proc = Proc(idle())
    pending: Future[int] = Future()
    proc.wait_on(pending, 5.0)
    assert not proc.woken and proc.since == 5.0
    pending.set_result(1)
    assert proc.woken


def test_a_completed_future_wakes_it_at_once() -> None:
    done: Future[int] = Future()
    done.set_result(1)
    proc = Proc(idle())
    proc.wait_on(done, 0.0)
    assert proc.woken


def test_a_future_it_stopped_waiting_on_does_not_wake_it() -> None:
    """A flow abandoned while it waited now waits on its revert's future; the old future
    completing later says nothing about the new one."""
    old: Future[int] = Future()
    new: Future[int] = Future()
    proc = Proc(idle())
    proc.wait_on(old, 0.0)
    proc.wait_on(new, 1.0)
    old.set_result(1)
    assert not proc.woken
    new.set_exception(RuntimeError("refused"))
    assert proc.woken


def test_a_flow_ended_outside_the_pump_leaves_at_the_next_pump(
        inventory_url: InventoryURL) -> None:
    topology = load_topology(TOPOLOGY)
    lab = FakeLab(topology)
    engine = RecoveryEngine(topology, lab.drivers, lab.clock, inventory_url("inv"),
                            RecoveryConfig())
    pending: Future[int] = Future()  # its I/O never answers
    proc = Proc(idle())
    proc.wait_on(pending, lab.clock.now())
    engine.state.flows["web1"] = proc
    engine._pump.pump()
    assert "web1" in engine.state.flows  # still waiting: nothing to do
    proc.finished = True  # what abandon_lost_storage does when the throw ends the flow
    engine._pump.pump()
    assert "web1" not in engine.state.flows
    engine.lease.release()


def test_a_proc_woken_by_another_in_the_same_pump_moves_in_that_pump(
        inventory_url: InventoryURL) -> None:
    """The pump looks again only when a proc woke or was added while it went through them:
    "b" completes the future "a" (earlier in name order, already passed) waits on; "a"
    must move in the same pump, as when every pass looked at every proc."""
    topology = load_topology(TOPOLOGY)
    lab = FakeLab(topology)
    engine = RecoveryEngine(topology, lab.drivers, lab.clock, inventory_url("inv"),
                            RecoveryConfig())
    answer: Future[int] = Future()
    moved: list[str] = []

    def waits() -> Generator[Any, Any, None]:
        moved.append(f"a got {(yield answer)}")
        yield Future()  # then waits for good

    def answers() -> Generator[Any, Any, None]:
        answer.set_result(7)
        moved.append("b answered")
        yield Future()

    a = Proc(waits())
    a.wait_on(a.gen.send(None), lab.clock.now())  # "a" waits on `answer`
    engine.state.flows.update(a=a, b=Proc(answers()))
    engine._pump.pump()
    assert moved == ["b answered", "a got 7"]
    engine.lease.release()
