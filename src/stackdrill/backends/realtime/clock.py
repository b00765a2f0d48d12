"""Lab time on CLOCK_MONOTONIC, and the alarm that carries a scheduled action's failure
to the thread waiting on the clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent import futures
from concurrent.futures import Future
from typing import Any

from stackdrill.api import Clock


class WallClock(Clock):
    """Seconds since the lab started, on CLOCK_MONOTONIC (shared with the workloads).

    Scheduled actions run on timer threads while the engine waits here; when one of
    them fails, `alarm` wakes the waiting thread and `sleep`/`wait` raise its error
    (once), just as the simulator raises a failing scheduled action from its run loop.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._wake: Future[None] = Future()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def rebase(self) -> float:
        """Make now the new time 0; returns by how much every earlier time moved."""
        shift = self.now()
        self.t0 += shift
        return shift

    def alarm(self, error: BaseException) -> None:
        """Called from another thread: make the waiting thread raise `error`."""
        with self._lock:
            if self._error is None:
                self._error = error
            wake = self._wake
        if not wake.done():
            wake.set_result(None)

    def _raise_alarm(self) -> None:
        with self._lock:
            error, self._error = self._error, None
            if error is not None:
                self._wake = Future()
        if error is not None:
            raise error

    def sleep(self, seconds: float) -> None:
        self._raise_alarm()
        futures.wait([self._wake], timeout=max(0.0, seconds))
        self._raise_alarm()

    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        self._raise_alarm()
        pending = list(ops)
        done, _ = futures.wait([*pending, self._wake], timeout=timeout,
                               return_when=futures.FIRST_COMPLETED)
        self._raise_alarm()
        return {f for f in done if f is not self._wake}
