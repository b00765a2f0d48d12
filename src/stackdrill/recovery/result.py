"""What the engine reports: events as they happen, and a result per instance at the end.

The drill runner turns events into the report's timeline and `phases`; the CLI
prints them as progress. Everything here is a plain value (no DB objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class InstanceState(StrEnum):
    RUNNING = "running"  # never touched: its host is fine
    RECOVERED = "recovered"  # verified running on a new host
    RESUMED = "resumed"  # stopped for maintenance, started again on its host after boot
    RESTARTED = "restarted"  # its process died on a host that stayed up; started there again
    IN_PROGRESS = "in-progress"  # a flow is under way when `until` came
    PENDING = "pending"  # its host failed; waiting for detection/fencing/planning
    BLOCKED = "blocked"  # its old host cannot be confirmed fenced
    UNRECOVERABLE = "unrecoverable"  # no capacity, no reachable replica, ... (see reason)
    STOPPED = "stopped"  # cleanly shut down for maintenance, waiting for its host to boot
    FAILED = "failed"  # a step failed for good (see reason)


class Phase(StrEnum):
    DETECTION = "detection"
    FENCING = "fencing"
    PLANNING = "planning"
    WAIT = "wait"  # Masakari's pause after disabling the compute service
    STORAGE = "storage"
    START = "start"
    ATTACH = "attach"
    NETWORK = "network"
    VERIFY = "verify"
    CLEANUP = "cleanup"  # a returning host's evacuated guests removed
    SHUTDOWN = "shutdown"  # maintenance: clean stop on the drained host


@dataclass(frozen=True)
class RecoveryEvent:
    """One thing the engine did or saw, at lab time `time`."""

    time: float
    kind: str  # e.g. "host-suspected", "fence-confirmed", "instance-verified"
    message: str
    host: str | None = None
    instance: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseTiming:
    phase: Phase
    start: float
    end: float
    host: str | None = None
    instance: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class InstanceOutcome:
    name: str
    host_before: str
    host_after: str | None
    state: InstanceState
    reason: str = ""
    attach_mode: str | None = None  # "local" / "remote" / "mixed"; None without volumes
    started_at: float | None = None
    verified_at: float | None = None
    restarts: int = 0  # restarted in place after its process died (Pacemaker's failcount)


@dataclass(frozen=True)
class JournalRecord:
    seq: int
    time: float
    step: str
    host: str | None
    instance: str | None
    attempt: int
    detail: dict[str, Any]


@dataclass(frozen=True)
class RecoveryResult:
    instances: list[InstanceOutcome]
    phases: list[PhaseTiming]
    journal: list[JournalRecord]
    events: list[RecoveryEvent]
    failed_hosts: list[str]
    blocked_hosts: dict[str, str]  # host -> why it could not be fenced
    started_at: float
    ended_at: float

    def instance(self, name: str) -> InstanceOutcome:
        for outcome in self.instances:
            if outcome.name == name:
                return outcome
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        bad = {InstanceState.BLOCKED, InstanceState.UNRECOVERABLE, InstanceState.FAILED}
        return not any(o.state in bad for o in self.instances)
