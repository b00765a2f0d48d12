"""A host's recovery state, read back from the journal (so a restarted engine agrees).

    UP --host-down--> DOWN --fence-requested--> FENCING --confirmed/assumed--> FENCED
    FENCED --service-forced-down--> EVACUATING --heartbeats again--> RETURNING
    RETURNING --cleanup confirmed--> UP (rejoined)   | --not confirmed--> DOWN (fenced again)
    FENCING --not confirmed--> UNFENCEABLE (retried; its instances are blocked)
    UP --service-disabled--> MAINTENANCE --went down--> REBOOTING --boots--> BOOTED --enabled--> UP
"""

from __future__ import annotations

from enum import StrEnum

from stackdrill.recovery.journal import Step
from stackdrill.recovery.result import JournalRecord


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


AFTER: dict[str, HostStatus] = {
    Step.HOST_DOWN.value: HostStatus.DOWN,
    Step.FENCE_REQUESTED.value: HostStatus.FENCING,
    Step.FENCE_FAILED.value: HostStatus.UNFENCEABLE,
    Step.FENCE_CONFIRMED.value: HostStatus.FENCED,
    Step.FENCE_ASSUMED.value: HostStatus.FENCED,
    Step.SERVICE_FORCED_DOWN.value: HostStatus.EVACUATING,
    Step.HOST_RETURNED.value: HostStatus.RETURNING,
    Step.REJOIN_REFUSED.value: HostStatus.DOWN,
    Step.HOST_REJOINED.value: HostStatus.UP,
    Step.SERVICE_DISABLED.value: HostStatus.MAINTENANCE,
    Step.HOST_REBOOTING.value: HostStatus.REBOOTING,
    Step.HOST_REBOOTED.value: HostStatus.BOOTED,
    Step.SERVICE_ENABLED.value: HostStatus.UP,
}

# Fenced in the current incident: nothing of the host can run or write.
FENCED_STATES = frozenset({HostStatus.FENCED, HostStatus.EVACUATING})
# Not a place to put instances, and its running flows' targets must be abandoned.
FAILED_STATES = frozenset({HostStatus.DOWN, HostStatus.FENCING, HostStatus.UNFENCEABLE,
                           HostStatus.FENCED, HostStatus.EVACUATING, HostStatus.RETURNING})


def status_of(records: list[JournalRecord]) -> HostStatus:
    status = HostStatus.UP
    for record in records:
        status = AFTER.get(record.step, status)
    return status


def last(records: list[JournalRecord], *steps: Step) -> JournalRecord | None:
    for record in reversed(records):
        if record.step in steps:  # Step is a StrEnum: equal to its value
            return record
    return None
