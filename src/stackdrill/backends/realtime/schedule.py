"""Actions at lab times on a lab that runs in real time.

The drill runner schedules faults and commands with `call_at` while the recovery engine
waits on the clock; each action runs once on its own timer thread. A failing action is
never swallowed: it is traced and raised on the clock where the engine (or the runner)
next waits, so a fault that could not be injected fails the drill on every backend.
Teardown must be certain yet never race an action: once `stop` is called no action
starts, and it waits (bounded) for those in flight, which could otherwise recreate a
namespace or start a domain after the cleanup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stackdrill.api import ActionFailed, ActionRan, ScheduledActionFailed, TraceWriter
from stackdrill.backends.realtime.clock import WallClock

log = logging.getLogger(__name__)


class Schedule:
    """Actions at lab times, each on its own timer thread."""

    def __init__(self, name: str, clock: WallClock, tracer: TraceWriter) -> None:
        self.name = name
        self.clock = clock
        self.tracer = tracer
        self.stopped = threading.Event()  # set once by `stop`; long waits watch it too
        self._cv = threading.Condition()  # guards _unfinished, _timers and the stop
        self._unfinished: dict[int, float] = {}  # action id -> its lab time
        self._timers: list[threading.Timer] = []

    def call_at(self, time_s: float, action: Callable[[], None], label: str) -> None:
        with self._cv:
            if self.stopped.is_set():
                return
            key = len(self._timers)
            self._unfinished[key] = time_s

            def run() -> None:
                self._run(key, action, label)

            timer = threading.Timer(max(0.0, time_s - self.clock.now()), run)
            timer.daemon = True
            timer.name = f"{self.name}-at-{time_s:g}"
            self._timers.append(timer)
        timer.start()

    def _run(self, key: int, action: Callable[[], None], label: str) -> None:
        with self._cv:
            if self.stopped.is_set():
                return
        try:
            self.tracer.emit(ActionRan(label))
            action()
        except Exception as exc:  # any failure: the drill did not do what it said
            self.tracer.emit(ActionFailed(label, f"{type(exc).__name__}: {exc}"))
            log.exception("scheduled action %s failed", label)
            failed = ScheduledActionFailed(f"scheduled action {label!r} failed: {exc}")
            failed.__cause__ = exc
            self.clock.alarm(failed)
        finally:
            with self._cv:
                self._unfinished.pop(key, None)
                self._cv.notify_all()

    def settle(self, grace: float) -> int:
        """Wait (bounded) for the actions whose time has come to finish: under load a probe
        or fault that started just before the drill's end takes seconds, and its result
        belongs in the evidence. Returns how many are still running."""
        deadline = time.monotonic() + grace
        with self._cv:
            while True:
                due = [t for t in self._unfinished.values() if t <= self.clock.now()]
                left = deadline - time.monotonic()
                if not due or left <= 0:
                    return len(due)
                self._cv.wait(timeout=min(0.5, left))

    def stop(self, timeout: float) -> bool:
        """No action starts from now on; wait for those running. False: this was not the
        first call (the lab is already being torn down)."""
        with self._cv:
            if self.stopped.is_set():
                return False
            self.stopped.set()
            for timer in self._timers:
                timer.cancel()
            deadline = time.monotonic() + timeout
            me = threading.current_thread()
            running = [t for t in self._timers if t.is_alive() and t is not me]
        for timer in running:
            timer.join(max(0.0, deadline - time.monotonic()))
        still = sum(t.is_alive() for t in running)
        if still:
            log.warning("%s: %d scheduled action(s) still running at teardown", self.name, still)
        return True
