"""The simulation kernel: SimPy's event heap, one seeded RNG, and the event trace.

Nothing in the simulator reads the wall clock or global randomness. Every model
gets the same `Kernel`; every state change a model makes is recorded through its
trace writer (`emit` for the typed events checks read, `log` for the rest), which is
what makes two runs with one seed byte-identical.
"""

from __future__ import annotations

import gc
import random
import threading
import weakref
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


# While a simulated lab exists, the collector's oldest generation is examined this many
# times less often than the process had it (CPython: after 10 collections of the middle one).
FULL_COLLECTION_SPACING = 10
SPIN_WAITS = 10_000  # waits in a row at one simulated moment on a done future: a bug


class _FullCollectionSpacing:
    """Fewer full collections while a simulated lab exists (restored when the last goes).

    Pausing the collector while events run (`gc_paused`) leaves the collections between
    them: each time the engine has allocated enough to collect the young generation ten
    times ten, CPython collects everything and walks the whole drill's data (write
    histories, stored records, the trace), which grows with the lab. Their number follows
    the engine's work, which grows with the lab too, so the walks cost lab x lab: 0.16 s
    at 400 instances, 0.63 s at 800. A longer spacing examines the long-lived data less
    often; young cycles are collected as before, old ones later, none is lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._thresholds: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # was, ours

    def acquire(self) -> None:
        with self._lock:
            if self._holders == 0:
                before: tuple[int, ...] = gc.get_threshold()
                young, middle, old = before[:3]
                gc.set_threshold(young, middle, old * FULL_COLLECTION_SPACING)
                self._thresholds = (before, gc.get_threshold())
            self._holders += 1

    def release(self) -> None:
        """One lab less; after the last, the process's own thresholds again, unless someone
        has set others meanwhile."""
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._thresholds is not None:
                before, ours = self._thresholds
                if gc.get_threshold() == ours:
                    gc.set_threshold(*before)
                self._thresholds = None


_SPACING = _FullCollectionSpacing()


class Kernel:
    """Shared simulation state: clock, randomness, and the lab's trace writer."""

    def __init__(self, seed: int) -> None:
        self.env = simpy.Environment()
        self.seed = seed
        self.rng = random.Random(seed)
        self.tracer = TraceWriter(lambda: float(self.env.now))
        _SPACING.acquire()
        # until `close`, or until the kernel is collected (a lab nobody destroyed)
        self._spacing = weakref.finalize(self, _SPACING.release)

    def close(self) -> None:
        """The lab is destroyed: the collector's spacing goes back (see above). Kept until
        then, not longer, so that a sweep of many drills frees each one's dead lab as soon
        as it did before (with the spacing kept, a 300-seed sweep peaked at twice the RSS)."""
        self._spacing()

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
        self._spins = 0  # waits in a row handed a done future at one simulated moment
        self._spin_at = -1.0

    def now(self) -> float:
        return self.kernel.now

    def sleep(self, seconds: float) -> None:
        self.kernel.run_until(self.kernel.now + max(0.0, seconds))

    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        """Run the simulator until one of `ops` completes or the timeout passed. A caller
        that keeps waiting on a future already done lets no simulated time pass: after
        `SPIN_WAITS` such waits in a row at one moment that is an error, not a hung run."""
        ops = list(ops)
        self._check_spin(ops)
        with gc_paused():
            return self._wait(ops, self.horizon if timeout is None
                              else self.kernel.env.now + timeout)

    def _check_spin(self, ops: list[Future[Any]]) -> None:
        now = self.kernel.now
        if now != self._spin_at:  # (asked first: most waits begin at a new moment)
            self._spin_at, self._spins = now, 0
            return
        self._spins = self._spins + 1 if any(op.done() for op in ops) else 0
        if self._spins >= SPIN_WAITS:
            raise RuntimeError(f"{SPIN_WAITS} waits in a row at simulated time {now:.3f} on a "
                               "future already done: its caller never takes the result")

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
