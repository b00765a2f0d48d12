"""Waiting for a state instead of sleeping: poll a condition until it holds or a deadline
passes, then a clear error that says what was awaited (pyroute2's `ensure` habit).

Written out rather than taken from tenacity: the whole need is this bounded loop, and a
stop event that ends it at once when the lab is torn down.

Top-level, not under a backend: the CLI, the conformance recorders and the overlay probes
wait too, and nothing outside `backends/` reaches into a backend for a utility."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from stackdrill.api.drivers import DriverError

T = TypeVar("T")


class WaitTimeout(DriverError):
    """A state the lab waited for did not come within its deadline."""


def wait_until(condition: Callable[[], T | None], *, timeout: float, interval: float,
               what: str, stop: threading.Event | None = None) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy (which is
    returned), for at most `timeout` seconds; then raise WaitTimeout naming `what`. A set
    `stop` event ends the wait early with the same error."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            break
        pause = min(interval, left)
        if stop is not None:
            if stop.wait(pause):
                raise WaitTimeout(f"stopped while waiting for {what}")
        else:
            time.sleep(pause)
    raise WaitTimeout(f"{what}: not within {timeout:g} s")
