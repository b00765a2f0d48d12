"""A host's recovery state as an explicit state machine: which journal step may follow
which host status, and the status it leads to.

    UP --host-down--> DOWN --fence-requested--> FENCING --confirmed/assumed--> FENCED
    FENCED --service-forced-down--> EVACUATING --heartbeats again--> RETURNING
    RETURNING --cleanup confirmed--> UP (rejoined)   | --not confirmed--> DOWN (fenced again)
    FENCING --not confirmed--> UNFENCEABLE (retried; its instances are blocked)
    UP --service-disabled--> MAINTENANCE --went down--> REBOOTING --boots--> BOOTED --enabled--> UP

The journal checks every host step against `TRANSITIONS` before it writes it (TaskFlow's
`check_flow_transition` is the model): an engine that tries an illegal step has a bug and
stops at once, instead of leaving a journal that a restarted engine would read back into
a state the live one never was in. Reading back replays the same table, so the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.steps import JournalStep


class HostStatus(StrEnum):
    UP = "up"
    DOWN = "down"
    FENCING = "fencing"
    UNFENCEABLE = "unfenceable"
    FENCED = "fenced"
    EVACUATING = "evacuating"
    RETURNING = "returning"
    MAINTENANCE = "maintenance"
    REBOOTING = "rebooting"
    BOOTED = "booted"


_S, _H = JournalStep, HostStatus
# status -> {step that may be journaled for the host now: the status it leads to}
# (keyed by str: a JournalStep is one, and records read back carry the plain value)
TRANSITIONS: Mapping[HostStatus, Mapping[str, HostStatus]] = {
    # HOST_REJOINED from UP: a storage host that rebooted while the controller could not
    # see it (its replicas came back Secondary) has its guests reattached to it
    _H.UP: {_S.HOST_DOWN: _H.DOWN, _S.SERVICE_DISABLED: _H.MAINTENANCE,
            _S.HOST_REJOINED: _H.UP},
    _H.DOWN: {_S.FENCE_REQUESTED: _H.FENCING, _S.FENCE_ASSUMED: _H.FENCED,
              _S.HOST_RETURNED: _H.RETURNING},  # held (last replica), then back
    _H.FENCING: {_S.FENCE_CONFIRMED: _H.FENCED, _S.FENCE_FAILED: _H.UNFENCEABLE},
    _H.UNFENCEABLE: {_S.FENCE_REQUESTED: _H.FENCING, _S.FENCE_ASSUMED: _H.FENCED,
                     _S.HOST_RETURNED: _H.RETURNING},
    _H.FENCED: {_S.SERVICE_FORCED_DOWN: _H.EVACUATING},
    _H.EVACUATING: {_S.PLANNED: _H.EVACUATING, _S.HOST_RETURNED: _H.RETURNING},
    _H.RETURNING: {_S.GUEST_CLEANED: _H.RETURNING, _S.HOST_REJOINED: _H.UP,
                   _S.REJOIN_REFUSED: _H.DOWN},
    _H.MAINTENANCE: {_S.HOST_REBOOTING: _H.REBOOTING},
    _H.REBOOTING: {_S.HOST_REBOOTED: _H.BOOTED},
    _H.BOOTED: {_S.SERVICE_ENABLED: _H.UP},
}

# Fenced in the current incident: nothing of the host can run or write.
FENCED_STATES = frozenset({HostStatus.FENCED, HostStatus.EVACUATING})
# Not a place to put instances, and its running flows' targets must be abandoned.
FAILED_STATES = frozenset({HostStatus.DOWN, HostStatus.FENCING, HostStatus.UNFENCEABLE,
                           HostStatus.FENCED, HostStatus.EVACUATING, HostStatus.RETURNING})


class IllegalTransition(RuntimeError):
    """A host step that may not follow the host's status: a bug in the engine."""


def after(status: HostStatus, step: str, host: str = "?") -> HostStatus:
    """The status `step` leads to from `status`; raises when it may not follow it."""
    allowed = TRANSITIONS[status]
    following = allowed.get(step)
    if following is None:
        raise IllegalTransition(
            f"journal step {step} may not follow host {host} being {status.value} "
            f"(allowed: {', '.join(sorted(allowed)) or 'nothing'})")
    return following


class HostStates:
    """Every host's current status, moved only through `TRANSITIONS` (by the journal)."""

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self.status: dict[str, HostStatus] = dict.fromkeys(hosts, HostStatus.UP)

    def check(self, host: str, step: str) -> HostStatus:
        return after(self.status.get(host, HostStatus.UP), step, host)

    def apply(self, host: str, step: str) -> None:
        self.status[host] = self.check(host, step)


def status_of(records: Iterable[JournalRecord]) -> HostStatus:
    """One host's status from its journal records (raises on an illegal sequence)."""
    status = HostStatus.UP
    for record in records:
        status = after(status, record.step, record.host or "?")
    return status
