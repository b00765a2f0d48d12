"""The monitor: at each look (cadence.py) it reads every compute and storage host's health
and hands the host to the handler of its status (a table: HostStatus -> handler).
Detection is the handler of an UP host: missed heartbeats over the grace period and a
corroborating signal (`detect.assess`), never a host that holds the only current copy of
a volume. The other
handlers belong to the collaborator that owns that part of the host's life: fencing,
returning hosts, maintenance.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from stackdrill.api import HostHealth
from stackdrill.recovery.detect import Assessment, Verdict, assess
from stackdrill.recovery.fencer import Fencer
from stackdrill.recovery.hoststate import HostStatus
from stackdrill.recovery.lastcopy import POWERED, sole_current_copy
from stackdrill.recovery.maintenance import Maintenance
from stackdrill.recovery.returning import Returning
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.steps import JournalStep

# (host, its health now, now)
Handler = Callable[[str, HostHealth, float], None]


class HostMonitor:
    """One look at every compute and storage host per poll (or change: cadence.py)."""

    def __init__(self, shared: Shared, fencer: Fencer, returning: Returning,
                 maintenance: Maintenance) -> None:
        self.topology, self.drivers, self.config = shared.topology, shared.drivers, shared.config
        self.journal, self.state, self.emit = shared.journal, shared.state, shared.emit
        self.returning = returning
        self.handlers: dict[HostStatus, Handler] = {
            HostStatus.UP: self._detect,
            HostStatus.DOWN: fencer.on_down,
            HostStatus.FENCING: fencer.on_fencing,
            HostStatus.UNFENCEABLE: fencer.on_unfenceable,
            HostStatus.FENCED: fencer.on_fenced,
            HostStatus.EVACUATING: returning.on_evacuating,
            HostStatus.RETURNING: returning.on_returning,
            HostStatus.MAINTENANCE: maintenance.on_maintenance,
            HostStatus.REBOOTING: maintenance.on_rebooting,
            HostStatus.BOOTED: maintenance.on_booted,
        }
        assert set(self.handlers) == set(HostStatus), "every host status needs a handler"

    def observe(self, now: float) -> None:
        state, health_of = self.state, self.drivers.compute.health
        for host in [*state.hosts, *state.storage_hosts]:
            health = state.health[host] = health_of(host)
            self.handlers[state.status[host]](host, health, now)

    def _detect(self, host: str, health: HostHealth, now: float) -> None:
        state = self.state
        storage = host in state.storage_hosts
        if health.last_heartbeat is None and storage:
            return  # the backend has no volume-service heartbeat: not watched
        if host not in state.suspects:
            beat = health.last_heartbeat
            if now - (beat if beat is not None else state.since) <= self.config.grace_s:
                return  # heartbeating: what assess() would say, without the cost
        cfg = self.config
        verdict = assess(health, partial(self.drivers.compute.witnesses, host), now,
                         cfg.grace_s, state.since, cfg.fence_on_isolation,
                         cfg.heartbeat_interval_s)
        sole = None
        if verdict.verdict is Verdict.DOWN and health.power in POWERED and not storage:
            sole = sole_current_copy(self.topology, self.drivers.storage, state.status, host)
        if sole is not None:  # (storage hosts: the fencer holds them)
            self._suspect(host, f"{verdict.reason}; not declared down: it is powered "
                          f"({health.power.value}) and holds the only current copy of "
                          f"volume {sole}")
        elif verdict.verdict is Verdict.DOWN:
            self._down(host, health, verdict)
        elif verdict.verdict is Verdict.SUSPECT:
            self._suspect(host, verdict.reason)
        elif host in state.suspects:
            state.suspects.discard(host)
            self.emit("host-ok", f"{host} heartbeats again", host)
            if storage:
                self.returning.rejoin_unseen(host, now)

    def _suspect(self, host: str, why: str) -> None:
        if host not in self.state.suspects:
            self.state.suspects.add(host)
            self.emit("host-suspect", f"{host}: {why}", host)

    def _down(self, host: str, health: HostHealth, verdict: Assessment) -> None:
        self.state.suspects.discard(host)
        self.journal.append(JournalStep.HOST_DOWN, host=host, reason=verdict.reason,
                            began=health.last_heartbeat or self.state.since)
        self.emit("host-down", f"{host} is down: {verdict.reason}", host)
