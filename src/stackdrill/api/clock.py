"""The only source of time for the engine, the drill runner and the checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any


class Clock(ABC):
    """Lab seconds: simulated on the simulator, the wall clock on real backends."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since the lab started."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (the simulator runs its events meanwhile)."""

    @abstractmethod
    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        """Block until at least one of `ops` is done or `timeout` passes; return the done ones."""
