"""Driving the engine's generators: flows and host procedures yield driver futures (or a
`Sleep`); this resumes each when its future is done, its sleep is over, or its operation
timed out, and makes the loop wait on the lab's clock until one of them can move.

Single-threaded on purpose: on the simulator the order in which generators move is
part of the run, so they move in name order and a run replays exactly.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from stackdrill.api import Clock
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.state import EngineState, Proc
from stackdrill.recovery.taskbase import Sleep


class ProcPump:
    def __init__(self, shared: Shared) -> None:
        self.clock: Clock = shared.clock
        self.config: RecoveryConfig = shared.config
        self.state: EngineState = shared.state

    def pump(self) -> None:
        """Resume every generator whose future completed or whose sleep ended, in name
        order; again while one that moved may have let another move: a future completed
        meanwhile (its callback woke a proc) or a proc was added. (Each that moved now
        waits on what is not ready: lab time does not pass inside the pump. On a real
        clock, a sleep that ends during the pump is seen at the next one.)"""
        flows, procs = self.state.flows, self.state.procs
        progressed = True
        while progressed:
            progressed = False
            wakes, added = Proc.wakes, 0
            timeout = self.config.op_timeout_s
            now = self.clock.now()
            for table in (flows, procs):
                before, seen = len(table), dict(table)
                for key in sorted(seen):
                    proc = seen[key]
                    # Without asking the future (a lock each time), inlined: with 200 flows
                    # in flight, most of every pump is this test on flows still waiting. (A
                    # flow ended by a throw outside the pump is dropped now.)
                    waiting = proc.waiting
                    if not (waiting is None or proc.woken or proc.finished) and (
                            now < proc.since + waiting.seconds if isinstance(waiting, Sleep)
                            else now - proc.since < timeout):
                        continue
                    if self._advance(proc):
                        progressed = True
                    if proc.finished:
                        table.pop(key, None)
                        before -= 1
                added += len(table) - before
            progressed = progressed and (Proc.wakes != wakes or added > 0)

    def _advance(self, proc: Proc) -> bool:
        now = self.clock.now()
        moved = False
        while not proc.finished:
            waiting = proc.waiting
            send: Any = None
            throw: BaseException | None = None
            if isinstance(waiting, Sleep):
                if now < proc.since + waiting.seconds:
                    return moved
            elif waiting is not None:
                if not waiting.done():
                    if now - proc.since < self.config.op_timeout_s:
                        return moved
                    throw = TimeoutError(f"no answer within {self.config.op_timeout_s:.0f} s")
                elif waiting.exception() is not None:
                    throw = waiting.exception()
                else:
                    send = waiting.result()
            try:
                proc.wait_on(proc.gen.throw(throw) if throw is not None
                             else proc.gen.send(send), now)
            except StopIteration:
                proc.finished = True
            moved = True
        return moved

    def wait(self, now: float, until: float) -> None:
        """Sleep on the lab's clock until a future completes, a sleep ends, or a poll is due."""
        wake = min(until, now + self.config.poll_s)
        futures: list[Future[Any]] = []
        for proc in [*self.state.flows.values(), *self.state.procs.values()]:
            if isinstance(proc.waiting, Sleep):
                wake = min(wake, proc.since + proc.waiting.seconds)
            elif proc.waiting is not None:
                futures.append(proc.waiting)
        futures.extend(a.future for a in self.state.fences.values())
        if futures:
            self.clock.wait(futures, timeout=max(0.0, wake - now))
        else:
            self.clock.sleep(max(0.0, wake - now))
