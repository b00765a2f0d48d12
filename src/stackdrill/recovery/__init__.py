"""The recovery engine: inventory, detection, fencing, planning, journaled flows.

It talks to a lab only through `stackdrill.api` (drivers and clock).
"""

from __future__ import annotations

from stackdrill.recovery.config import FenceAction, Mode, Profile, RecoveryConfig, RecoveryMethod
from stackdrill.recovery.engine import RecoveryEngine
from stackdrill.recovery.journal import EngineKilled, JournalStep
from stackdrill.recovery.plan import Placement, Plan, Unplaceable
from stackdrill.recovery.result import (
    InstanceOutcome,
    InstanceState,
    JournalRecord,
    Phase,
    PhaseTiming,
    RecoveryEvent,
    RecoveryResult,
)

__all__ = [
    "EngineKilled",
    "FenceAction",
    "InstanceOutcome",
    "InstanceState",
    "JournalRecord",
    "JournalStep",
    "Mode",
    "Phase",
    "PhaseTiming",
    "Placement",
    "Plan",
    "Profile",
    "RecoveryConfig",
    "RecoveryEngine",
    "RecoveryEvent",
    "RecoveryMethod",
    "RecoveryResult",
    "Unplaceable",
]
