"""Typed lab events and the one trace writer every backend uses.

A backend tells what happened as values (a host's power changed, a guest started, a DRBD
node changed role, an operator command finished, a fault was injected); the writer stamps
each with the lab time and keeps it. The checks read these values, never text. The trace
text and its SHA-256 are rendered from them in one format on every backend:

    <time, 6 decimals> <component> <event> key=value ...   (keys sorted)

so the same drill gives the same lines on the simulator run after run, and lines of the
same kind on every backend.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackdrill.api.drivers import PowerState

Scalar = str | int | float | bool | None
FactValue = Scalar | tuple["FactValue", ...]
Facts = tuple[tuple[str, FactValue], ...]


_PLAIN = frozenset({str, int, float, bool, type(None)})


def fact(value: object) -> FactValue:
    """A plain value for a trace field: enums by value, sequences as tuples, mappings as
    their sorted `{k:v}` text (they are shown, never read back)."""
    if type(value) in _PLAIN:  # most fields: no enum or container to look for
        return value  # type: ignore[return-value]  # exactly one of the Scalar types
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = ",".join(f"{k}:{render(fact(v))}" for k, v in sorted(value.items()))
        return "{" + inner + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return tuple(fact(v) for v in items)
    return str(value)


def facts(**fields: object) -> Facts:
    """Keyword fields as sorted facts."""
    return tuple([(k, fact(v)) for k, v in sorted(fields.items())])


def render(value: FactValue) -> str:
    if type(value) is str:  # most values; a str subclass still goes through str()
        return value
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, tuple):
        return "[" + ",".join(render(v) for v in value) + "]"
    return str(value)


class LabEvent(ABC):
    """Base of every lab event: says how it reads in the trace."""

    __slots__ = ()

    @abstractmethod
    def component(self) -> str: ...

    @abstractmethod
    def event(self) -> str: ...

    @abstractmethod
    def facts(self) -> Facts: ...


@dataclass(frozen=True, slots=True)
class Note(LabEvent):
    """Anything else a backend wants in its trace (simulator internals, bring-up stages)."""

    source: str
    what: str
    details: Facts = ()

    def component(self) -> str:
        return self.source

    def event(self) -> str:
        return self.what

    def facts(self) -> Facts:
        return self.details


@dataclass(frozen=True, slots=True)
class PowerChanged(LabEvent):
    """A host's power really changed (ground truth for fencing, not the engine's belief)."""

    host: str
    state: PowerState
    was: PowerState | None = None
    why: str = ""

    def component(self) -> str:
        return f"host/{self.host}"

    def event(self) -> str:
        return "power"

    def facts(self) -> Facts:
        return facts(state=self.state, was=self.was, why=self.why)


@dataclass(frozen=True, slots=True)
class GuestStarted(LabEvent):
    """A hypervisor started an instance (a new incarnation of it)."""

    host: str
    instance: str
    incarnation: int | None = None

    def component(self) -> str:
        return f"hv/{self.host}"

    def event(self) -> str:
        return "start"

    def facts(self) -> Facts:
        return facts(instance=self.instance, incarnation=self.incarnation)


@dataclass(frozen=True, slots=True)
class GuestStopped(LabEvent):
    """An instance stopped on a host: destroyed, or killed with its host."""

    host: str
    instance: str
    incarnation: int | None = None
    why: str = ""

    def component(self) -> str:
        return f"hv/{self.host}"

    def event(self) -> str:
        return "stop"

    def facts(self) -> Facts:
        return facts(instance=self.instance, incarnation=self.incarnation, why=self.why)


@dataclass(frozen=True, slots=True)
class DrbdStateChanged(LabEvent):
    """One DRBD node's role, disk or connection state changed (what `drbdsetup events2`
    prints); fields that did not change are None."""

    resource: str
    node: str
    role: str | None = None
    disk: str | None = None
    connection: str | None = None
    peer_disk: str | None = None
    details: Facts = ()

    def component(self) -> str:
        return f"drbd/{self.resource}"

    def event(self) -> str:
        return "state"

    def facts(self) -> Facts:
        own = facts(node=self.node, role=self.role, disk=self.disk, conn=self.connection,
                    pdsk=self.peer_disk)
        return tuple(sorted([f for f in own if f[1] is not None] + list(self.details)))


@dataclass(frozen=True, slots=True)
class DrbdConnectionLost(LabEvent):
    """A DRBD resource lost its peer (ping timeout, link or peer gone)."""

    resource: str
    since: float
    reason: str

    def component(self) -> str:
        return f"drbd/{self.resource}"

    def event(self) -> str:
        return "connection-lost"

    def facts(self) -> Facts:
        return facts(reason=self.reason, since=self.since)


@dataclass(frozen=True, slots=True)
class DrbdConnected(LabEvent):
    """A DRBD resource's nodes met after the handshake; `states` gives each node's
    connection state (Connected, SyncSource, SyncTarget)."""

    resource: str
    states: Facts

    def component(self) -> str:
        return f"drbd/{self.resource}"

    def event(self) -> str:
        return "connected"

    def facts(self) -> Facts:
        return self.states


@dataclass(frozen=True, slots=True)
class DrbdNotice(LabEvent):
    """A notable DRBD event an operator looks for in the kernel log: a split brain and how
    it was resolved, a resync, fencing of the peer, an I/O error. Shown in reports."""

    resource: str
    kind: str
    details: Facts = ()

    def component(self) -> str:
        return f"drbd/{self.resource}"

    def event(self) -> str:
        return self.kind

    def facts(self) -> Facts:
        return self.details

    def get(self, key: str) -> FactValue:
        return next((v for k, v in self.details if k == key), None)


@dataclass(frozen=True, slots=True)
class CommandIssued(LabEvent):
    """An operator command from the drill starts (lvm, drbdadm, a probe...)."""

    label: str

    def component(self) -> str:
        return "command"

    def event(self) -> str:
        return "start"

    def facts(self) -> Facts:
        return facts(label=self.label)


@dataclass(frozen=True, slots=True)
class CommandFinished(LabEvent):
    """An operator command ended; its full result is in the lab's command results."""

    label: str
    ok: bool

    def component(self) -> str:
        return "command"

    def event(self) -> str:
        return "done"

    def facts(self) -> Facts:
        return facts(label=self.label, ok=self.ok)


@dataclass(frozen=True, slots=True)
class FaultInjected(LabEvent):
    description: str  # `faults.describe` of the fault

    def component(self) -> str:
        return "fault"

    def event(self) -> str:
        return "inject"

    def facts(self) -> Facts:
        return facts(fault=self.description)


@dataclass(frozen=True, slots=True)
class FaultHealed(LabEvent):
    description: str

    def component(self) -> str:
        return "fault"

    def event(self) -> str:
        return "heal"

    def facts(self) -> Facts:
        return facts(fault=self.description)


@dataclass(frozen=True, slots=True)
class ActionRan(LabEvent):
    """A scheduled action (a fault, a command) started at its lab time."""

    label: str

    def component(self) -> str:
        return "lab"

    def event(self) -> str:
        return "step"

    def facts(self) -> Facts:
        return facts(label=self.label)


@dataclass(frozen=True, slots=True)
class ActionFailed(LabEvent):
    """A scheduled action raised: the drill did not do what it said it would."""

    label: str
    error: str

    def component(self) -> str:
        return "lab"

    def event(self) -> str:
        return "step-failed"

    def facts(self) -> Facts:
        return facts(error=self.error, label=self.label)


@dataclass(frozen=True, slots=True)
class Traced:
    """An event with the lab time it happened at."""

    at: float
    event: LabEvent

    def line(self) -> str:
        ev = self.event
        parts = " ".join(f"{k}={render(v)}" for k, v in ev.facts())
        head = f"{self.at:.6f} {ev.component()} {ev.event()}"
        return f"{head} {parts}" if parts else head


Listener = Callable[[Traced], None]


class TraceWriter:
    """Keeps a lab's events in order of emission; thread-safe (real labs emit from their
    timer and driver threads). Listeners run in the emitting thread, after the event is
    kept."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._events: list[Traced] = []
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()

    def emit(self, event: LabEvent) -> Traced:
        with self._lock:  # stamped under the lock: the list stays in time order
            traced = Traced(self._now(), event)
            self._events.append(traced)
        for listener in self._listeners:
            listener(traced)
        return traced

    def note(self, component: str, event: str, **fields: object) -> Traced:
        return self.emit(Note(component, event, facts(**fields)))

    def subscribe(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)

    def events(self) -> list[Traced]:
        with self._lock:
            return list(self._events)

    def rebase(self, shift: float) -> None:
        """The lab's time 0 moved `shift` seconds later (a real lab starts its clock when
        it is up): what happened before is dated 0, keeping its order."""
        with self._lock:
            self._events = [Traced(max(0.0, t.at - shift), t.event) for t in self._events]

    def lines(self) -> list[str]:
        return render_lines(self.events())

    def sha256(self) -> str:
        return trace_sha256(self.events())


def render_lines(events: Iterable[Traced]) -> list[str]:
    return [t.line() for t in events]


def trace_sha256(events: Iterable[Traced]) -> str:
    digest = hashlib.sha256()
    for traced in events:
        digest.update(traced.line().encode())
        digest.update(b"\n")
    return digest.hexdigest()
