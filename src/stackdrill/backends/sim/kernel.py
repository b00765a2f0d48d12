"""The simulation kernel: SimPy's event heap, one seeded RNG, and the event trace.

Nothing in the simulator reads the wall clock or global randomness. Every model
gets the same `Kernel`; every state change a model makes is recorded with
`kernel.log(...)`, which is what makes two runs with one seed byte-identical.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

import simpy

from stackdrill.backends.base import Clock


class Kernel:
    """Shared simulation state: clock, randomness, trace."""

    def __init__(self, seed: int) -> None:
        self.env = simpy.Environment()
        self.seed = seed
        self.rng = random.Random(seed)
        self._trace: list[str] = []
        self._listeners: list[Callable[[float, str, str, dict[str, Any]], None]] = []

    @property
    def now(self) -> float:
        return float(self.env.now)

    def log(self, component: str, event: str, **fields: Any) -> None:
        """Record one event. Fields are rendered sorted, floats rounded to microseconds."""
        parts = " ".join(f"{k}={_render(v)}" for k, v in sorted(fields.items()))
        self._trace.append(f"{self.now:.6f} {component} {event}" + (f" {parts}" if parts else ""))
        for listener in self._listeners:
            listener(self.now, component, event, fields)

    def subscribe(self, listener: Callable[[float, str, str, dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def trace(self) -> list[str]:
        return list(self._trace)

    def trace_sha256(self) -> str:
        digest = hashlib.sha256()
        for line in self._trace:
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()

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
            self.env.run(until=time)


def _render(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_render(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


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
        env = self.kernel.env
        deadline = self.horizon if timeout is None else env.now + timeout
        while True:
            done = {op for op in ops if op.done()}
            if done or not ops:
                return done
            next_time = env.peek()
            if next_time > deadline:
                self.kernel.run_until(deadline)
                return {op for op in ops if op.done()}
            env.step()
