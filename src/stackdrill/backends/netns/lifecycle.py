"""What surrounds a netns lab's life on the wall clock: scheduled actions, and the state
kept for the judge after teardown.

The drill runner schedules faults and probes with `call_at` while the recovery engine
waits in `clock.wait`; here each action runs once on its own timer thread. Teardown must
be certain yet never race an action: once `stop` is called no action starts, and it
waits (bounded) for those in flight, which could otherwise recreate a namespace or
spawn a process after the cleanup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class Schedule:
    """Actions at lab times, on timer threads; errors go to `alarm` (the clock raises them
    where the engine waits), every run and failure to the lab's trace."""

    def __init__(self, name: str, now: Callable[[], float], trace: Callable[..., None],
                 alarm: Callable[[BaseException], None]) -> None:
        self.name = name
        self.now = now
        self.trace = trace
        self.alarm = alarm
        self.stopped = threading.Event()  # set once by `stop`; boots wait on it too
        self._cv = threading.Condition()  # guards _in_flight, _timers and the stop
        self._in_flight = 0
        self._timers: list[threading.Timer] = []

    def call_at(self, time_s: float, action: Callable[[], None], label: str) -> None:
        def run() -> None:
            with self._cv:
                if self.stopped.is_set():
                    return
                self._in_flight += 1
            try:
                self.trace("lab", "step", label=label)
                action()
            except Exception as exc:
                self.trace("lab", "step-failed", label=label, error=repr(exc))
                log.exception("scheduled action %s failed", label)
                self.alarm(RuntimeError(f"scheduled action {label!r} failed: {exc}"))
            finally:
                with self._cv:
                    self._in_flight -= 1
                    self._cv.notify_all()

        timer = threading.Timer(max(0.0, time_s - self.now()), run)
        timer.daemon = True
        timer.name = f"{self.name}-at-{time_s:g}"
        with self._cv:
            if self.stopped.is_set():
                return
            self._timers.append(timer)
        timer.start()

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
            while self._in_flight and time.monotonic() < deadline:
                self._cv.wait(timeout=0.5)
            if self._in_flight:
                log.warning("%s: %d scheduled action(s) still running at teardown",
                            self.name, self._in_flight)
        return True


def join_pool(pool: ThreadPoolExecutor, timeout: float) -> None:
    """Wait (bounded) for the pool's running operations after `shutdown(wait=False)`: one
    still creating a namespace or spawning a process after the cleanup would leave it."""
    deadline = time.monotonic() + timeout
    threads: Any = getattr(pool, "_threads", ())
    for thread in list(threads):
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
