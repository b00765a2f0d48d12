"""The simulation kernel: SimPy's event heap, one seeded RNG, and the event trace.

Nothing in the simulator reads the wall clock or global randomness. Every model
gets the same `Kernel`; every state change a model makes is recorded through its
trace writer (`emit` for the typed events checks read, `log` for the rest), which is
what makes two runs with one seed byte-identical.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import simpy

from stackdrill.api import Clock, LabEvent
from stackdrill.api.events import Listener, Note, TraceWriter, fact


@contextmanager
def gc_paused() -> Iterator[None]:
    """CPython's cyclic collector off while simulated events run, back as it was after.

    A drill's event loop allocates hundreds of thousands of objects that live until the
    run ends (write histories, stored records, the trace) and frees the rest by reference
    counting: the models make next to no reference cycles (one collection after a whole
    200-instance drill finds ~6 k objects). With the collector on, each full collection
    walks that growing heap again, a cost that grows faster than the lab. Whatever cycles
    the loop leaves are collected as usual once it returns: only when, never what, changes.
    """
    if not gc.isenabled():  # nested, or the caller turned it off: leave it to them
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Kernel:
    """Shared simulation state: clock, randomness, and the lab's trace writer."""

    def __init__(self, seed: int) -> None:
        self.env = simpy.Environment()
        self.seed = seed
        self.rng = random.Random(seed)
        self.tracer = TraceWriter(lambda: float(self.env.now))

    @property
    def now(self) -> float:
        return float(self.env.now)

    def log(self, component: str, event: str, **fields: Any) -> None:
        """Record a model's internal event (shown in the trace, read by no check). What
        `TraceWriter.note` records, built here without passing the fields on twice more as
        keywords: a large lab logs hosts x instances bridge-learn lines at bring-up."""
        self.tracer.emit(Note(component, event,
                              tuple([(k, fact(v)) for k, v in sorted(fields.items())])))

    def emit(self, event: LabEvent) -> None:
        """Record a typed event: what the checks and other models read."""
        self.tracer.emit(event)

    def subscribe(self, listener: Listener) -> None:
        self.tracer.subscribe(listener)

    def call_later(self, delay: float, action: Callable[[], None]) -> simpy.Event:
        """Run a plain callback after `delay` simulated seconds."""
        event = self.env.timeout(max(0.0, delay))
        event.callbacks.append(lambda _e: action())
        return event

    def future(self, process: simpy.Event) -> Future[Any]:
        """A `concurrent.futures.Future` completed when the SimPy event is processed."""
        fut: Future[Any] = Future()
        fut.set_running_or_notify_cancel()

        def done(event: simpy.Event) -> None:
            if event.ok:
                fut.set_result(event.value)
            else:
                event.defused = True
                fut.set_exception(event.value)

        if process.processed:
            done(process)
        else:
            process.callbacks.append(done)
        return fut

    def run_until(self, time: float) -> None:
        if time > self.env.now:
            with gc_paused():
                self.env.run(until=time)


class SimClock(Clock):
    """Waiting on the simulator means running its events until the condition holds."""

    def __init__(self, kernel: Kernel, horizon: float = 1e9) -> None:
        self.kernel = kernel
        self.horizon = horizon

    def now(self) -> float:
        return self.kernel.now

    def sleep(self, seconds: float) -> None:
        self.kernel.run_until(self.kernel.now + max(0.0, seconds))

    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        ops = list(ops)
        with gc_paused():
            return self._wait(ops, self.horizon if timeout is None
                              else self.kernel.env.now + timeout)

    def _wait(self, ops: list[Future[Any]], deadline: float) -> set[Future[Any]]:
        """Step the simulator until one of `ops` completes or the deadline. A completion
        is noticed through the futures' callbacks: polling every future after every
        event cost flows x events (200 flows in flight: most of a recovery's CPU)."""
        env = self.kernel.env
        fired: list[Future[Any]] = []
        for op in ops:
            op.add_done_callback(fired.append)
        while ops and not fired:
            if env.peek() > deadline:
                self.kernel.run_until(deadline)
                break
            env.step()
        return {op for op in ops if op.done()}
