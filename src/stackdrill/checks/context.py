"""Everything a checker may read of a run, in one typed value.

A checker sees the lab's own ground truth (the evidence), the topology it was built
from, what the recovery engine reported (for checks about the engine's answers: which
instances it recovered, which hosts it refused) and the faults injected. Never the lab
itself: a drill's lab is gone when it is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stackdrill.api import Observation
from stackdrill.checks.commands import ScheduledCommand
from stackdrill.checks.evidence import Evidence
from stackdrill.faults import Fault
from stackdrill.recovery import InstanceOutcome, RecoveryResult
from stackdrill.topology import Topology

# (injected at, the fault, healed at or None): the order the schedule played them
FaultLog = tuple[tuple[float, Fault, float | None], ...]


@dataclass(frozen=True)
class CheckContext:
    """The input of every checker in `checks.table`."""

    evidence: Evidence
    topology: Topology
    backend: str  # named in a reason when the backend cannot give what a check needs
    recoveries: tuple[RecoveryResult, ...] = ()
    fault_log: FaultLog = ()
    scheduled: tuple[ScheduledCommand, ...] = ()  # every command step must finish
    checkpoints: Mapping[str, Observation] = field(default_factory=dict)  # observe steps

    def observation(self, at: str | None) -> Observation | None:
        """The lab's state at the end (`at` None) or at the observe step labelled `at`;
        None when that step never ran."""
        return self.evidence.observation if at is None else self.checkpoints.get(at)

    @property
    def outcomes(self) -> Mapping[str, InstanceOutcome]:
        """instance -> the engine's last word on it (a later recovery overrides)."""
        return {o.name: o for r in self.recoveries for o in r.instances}

    @property
    def blocked_hosts(self) -> dict[str, str]:
        """host -> why the engine could not fence it, over every recovery."""
        return {h: why for r in self.recoveries for h, why in r.blocked_hosts.items()}
