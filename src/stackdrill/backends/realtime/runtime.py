"""The runtime of one real-time lab: its clock, its trace, its schedule, its driver pool."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from stackdrill.api import DriverError, TraceWriter
from stackdrill.backends.realtime.clock import WallClock
from stackdrill.backends.realtime.schedule import Schedule
from stackdrill.errors import InfrastructureError, StackdrillError

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a lab refuses with: a command or a syscall that failed, a host that is down. Any
# other exception in a driver operation is a bug and stays what it is.
LAB_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError,
                                                subprocess.SubprocessError, StackdrillError)


class RealTime:
    """Clock, trace writer, schedule and driver pool of one lab that runs in real time.

    `submit` runs a driver operation on the pool; what the lab refuses it with (see
    `lab_errors`) reaches the engine as a DriverError with the same message. An
    InfrastructureError (the lab could not be driven) stays one and also ends the run
    where the engine or the runner next waits on the clock."""

    def __init__(self, name: str, *, workers: int = 4,
                 lab_errors: tuple[type[BaseException], ...] = LAB_ERRORS) -> None:
        self.name = name
        self.clock = WallClock()
        self.tracer = TraceWriter(self.clock.now)
        self.schedule = Schedule(f"lab-{name}", self.clock, self.tracer)
        self.lab_errors = lab_errors
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"lab-{name}")

    def start_clock(self) -> float:
        """Lab time 0 is when the lab is up, as on the simulator: a drill's schedule must
        not run early by however long the bring-up took. What happened during the bring-up
        is dated 0, keeping its order. Returns the seconds the bring-up took."""
        shift = self.clock.rebase()
        self.tracer.rebase(shift)
        return shift

    def call_at(self, time_s: float, action: Callable[[], None], label: str) -> None:
        self.schedule.call_at(time_s, action, label)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._pool.submit(self._as_driver_call, fn, *args)

    def _as_driver_call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except DriverError:
            raise
        except InfrastructureError as exc:
            # the lab itself failed (an agent gone from a running guest): not a refusal the
            # engine could retry around but the end of the run, wherever it waits next
            self.clock.alarm(exc)
            raise
        except self.lab_errors as exc:
            raise DriverError(str(exc) or type(exc).__name__) from exc

    def stop(self, timeout: float) -> bool:
        """No scheduled action starts from now on; those in flight and the driver
        operations end (bounded). False when already stopped."""
        if not self.schedule.stop(timeout):
            return False
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for thread in list(getattr(self._pool, "_threads", ())):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return True
