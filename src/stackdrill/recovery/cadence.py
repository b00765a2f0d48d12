"""When the engine looks at the lab again, and when it schedules again.

The engine wakes whenever a future it waits on completes: with 200 flows in flight that
is a thousand times in a minute of lab time, almost always for one flow's step, which
the pump moves at once. Looking at every host and re-building the queue on each of those
wakes cost a fifth of the engine's CPU per instance (bench/recovery_parallel.py) and, on a
real lab, a command per host each time; it told nothing new: a host's health is a
heartbeat age, read at the poll interval as Nova's and Masakari's monitors do.

So, between polls, the engine looks again only when something it reacts to changed
after its last look:
- the monitor (hosts, guests, withheld guests, flows to abandon) when a host's status
  moved (a host procedure journaled a step), a fence answered, a host procedure ended or
  a guest was withheld at boot;
- the scheduler (queue and start) also when a flow ended or finished its storage actions:
  a target host's or a storage backend's slot is free, and waiting instances go at once.
A host step the look itself journaled (a fence confirmed) is followed up at the next
wake, as before; flows it started are not a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.journal import Journal
from stackdrill.recovery.state import EngineState, Proc


@dataclass(frozen=True)
class _Slots:
    """The flows the last schedule and the pump after it left in flight."""

    flows: int
    holding: tuple[Proc, ...]  # those that still held a storage slot


class Act(Enum):
    """What the engine does on a wake, besides moving the flows whose futures completed."""

    LOOK = "look"  # monitor, then schedule
    SCHEDULE = "schedule"  # queue and start only
    WAIT = "wait"  # nothing: wait on the clock again


class Cadence:
    def __init__(self, config: RecoveryConfig, journal: Journal, state: EngineState) -> None:
        self.config, self.journal, self.state = config, journal, state
        self.next_poll = float("-inf")
        self._world: tuple[int, int, int] | None = None  # as the last look began
        self._slots: _Slots | None = None

    def act(self, now: float, until: float) -> Act:
        """What this wake calls for: a look when the run ends, a poll is due, a fence
        answered (only a look concludes it: left alone, its done future would wake the
        engine at once, forever, without lab time passing), or the world changed since
        the last look began (what that look journaled too: a confirmed fence is followed
        by forcing the service down at the next wake); else scheduling when a flow slot
        may have been freed."""
        world = self._world_now()
        if now >= until or now >= self.next_poll or world != self._world \
                or any(a.future.done() for a in self.state.fences.values()):
            self._world = world
            self.next_poll = now + self.config.poll_s
            return Act.LOOK
        return Act.SCHEDULE if self._slot_freed() else Act.WAIT

    def settled(self) -> None:
        """Remember the flows that scheduling and the pump after it left in flight."""
        flows = self.state.flows
        self._slots = _Slots(len(flows), tuple(p for p in flows.values() if p.holds_storage()))

    def _slot_freed(self) -> bool:
        """A flow ended or finished its storage actions since it was settled. (Between
        schedules flows only end or move on: none starts.)"""
        seen = self._slots
        return seen is None or len(self.state.flows) != seen.flows or any(
            not p.holds_storage() for p in seen.holding)

    def _world_now(self) -> tuple[int, int, int]:
        """Host records journaled, host procedures in flight, guests withheld at boot."""
        state = self.state
        return self.journal.host_records, len(state.procs), len(state.withheld)
