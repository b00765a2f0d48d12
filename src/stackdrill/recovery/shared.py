"""What every collaborator of the engine receives: the state, the journal, the inventory,
the lab's drivers and clock, the configuration and the event emitter.

One bundle, built once by `RecoveryEngine`, instead of a chain of mixins sharing `self`:
each collaborator takes from it what it uses, and what it uses is visible in its
constructor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from stackdrill.api import Clock, Drivers
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.journal import Journal
from stackdrill.recovery.result import RecoveryEvent
from stackdrill.recovery.state import EngineState
from stackdrill.topology import Topology

log = logging.getLogger(__name__)


class Emitter:
    """The engine's events: kept for the result, logged, and handed to a listener (the
    drill runner's timeline, the CLI's progress) as they happen.

    `before_listener` runs first (the engine commits its journal there): a listener may
    read the inventory or start another engine on it, and must find what the event
    announces, not wait on the engine's open transaction."""

    def __init__(self, clock: Clock,
                 listener: Callable[[RecoveryEvent], None] | None = None,
                 before_listener: Callable[[], None] = lambda: None) -> None:
        self.events: list[RecoveryEvent] = []
        self._clock = clock
        self._listener = listener
        self._before_listener = before_listener

    def __call__(self, kind: str, message: str, host: str | None = None,
                 instance: str | None = None, **fields: Any) -> None:
        event = RecoveryEvent(self._clock.now(), kind, message, host, instance, fields)
        self.events.append(event)
        log.info("[%.1f] %s", event.time, message)
        if self._listener is not None:
            self._before_listener()
            self._listener(event)


@dataclass(frozen=True)
class Shared:
    topology: Topology
    drivers: Drivers
    clock: Clock
    config: RecoveryConfig
    sessions: Callable[[], Session]  # the journal's: they see every step written
    journal: Journal
    state: EngineState
    emit: Emitter
