"""The journal's vocabulary: every step the engine writes ahead of acting.

Its own module so that the host state machine (hoststate) and the journal that enforces
it can both name the steps without importing each other. Named `JournalStep`, not
`Step`: `drill.model.Step` is a step of a drill's schedule, a different thing.
"""

from __future__ import annotations

from enum import StrEnum


class JournalStep(StrEnum):
    # host level, in the order Nova requires
    HOST_DOWN = "host-down"  # heartbeats lost over the grace period, and corroborated
    FENCE_REQUESTED = "fence-requested"
    FENCE_CONFIRMED = "fence-confirmed"  # power controller reports OFF
    FENCE_ASSUMED = "fence-assumed"  # operator said --assume-fenced
    FENCE_FAILED = "fence-failed"
    SERVICE_FORCED_DOWN = "service-forced-down"
    PLANNED = "planned"  # placements computed for a failed host's instances
    HOST_RETURNED = "host-returned"  # a fenced host heartbeats again
    GUEST_CLEANED = "guest-cleaned"  # an evacuated guest destroyed on its returning old host
    HOST_REJOINED = "host-rejoined"
    REJOIN_REFUSED = "rejoin-refused"  # cleanup not confirmed: fenced again
    SERVICE_DISABLED = "service-disabled"  # maintenance
    HOST_REBOOTING = "host-rebooting"  # maintenance: the drained host went down
    HOST_REBOOTED = "host-rebooted"  # maintenance: the drained host went down and came back
    SERVICE_ENABLED = "service-enabled"
    # instance flow
    RESERVED = "reserved"
    SOURCE_STOPPED = "source-stopped"  # maintenance: clean stop on the drained host
    DB_UPDATED = "db-updated"
    STORAGE_READY = "storage-ready"
    START_REQUESTED = "start-requested"
    STARTED = "started"
    ATTACHED = "attached"
    NETWORK_PLUGGED = "network-plugged"
    VERIFIED = "verified"
    DONE = "done"
    GUEST_STOPPED = "guest-stopped"  # maintenance: no target; waits for its host's boot
    FLOW_ABORTED = "flow-aborted"  # target failed or a step failed; a new attempt may follow
    FLOW_FAILED = "flow-failed"  # given up for good
    UNRECOVERABLE = "unrecoverable"
    RESTARTS_EXHAUSTED = "restarts-exhausted"  # died again too often: left to the operator


FLOW_END = frozenset({JournalStep.DONE, JournalStep.FLOW_ABORTED, JournalStep.FLOW_FAILED,
                      JournalStep.GUEST_STOPPED})
