"""A drill: a topology, a workload, a schedule of faults and actions, and expectations.

Drills are YAML under `lab/drills/`; `stackdrill schema` prints their JSON Schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.api import LabOptions
from stackdrill.api.commands import Command
from stackdrill.checks.expectations import Expectation
from stackdrill.faults import Fault
from stackdrill.recovery import FenceAction, Mode, Profile, RecoveryConfig, RecoveryMethod
from stackdrill.topology import Topology


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# Below this a guest's shell loop (libvirt) or a netns writer process spends its time
# starting `sleep`; the shortest shipped interval is 0.02 s (protocol-a-failover).
MIN_WRITE_INTERVAL_S = 0.01


class Workload(Frozen):
    """Each instance writes numbered, checksummed records to its first volume."""

    write_interval_s: float = Field(
        default=LabOptions.write_interval_s, ge=MIN_WRITE_INTERVAL_S, allow_inf_nan=False,
        description="one record per interval; shorter than the drill, at most 100000 "
        "writes per instance over it")
    instances: Literal["all"] | tuple[str, ...] = "all"


class RecoverSpec(Frozen):
    """Start the recovery engine at this time; it monitors, detects, fences and evacuates.

    Every default is the engine's own (`RecoveryConfig`, or the profile's where the
    profile sets one), so a drill, a named lab and `stackdrill recover` never disagree."""

    parallel: int | None = Field(
        default=None, ge=1, le=256,
        description=f"cap on instances recovered at once; default: the profile's "
        f"(stackdrill: {RecoveryConfig().describe_parallelism()}; masakari: "
        f"{RecoveryConfig.masakari().describe_parallelism()})")
    profile: Profile = RecoveryConfig.profile
    mode: Mode = RecoveryConfig.mode
    host: str | None = Field(default=None, description="maintenance: the host to drain")
    reserved_hosts: tuple[str, ...] = RecoveryConfig.reserved_hosts
    recovery_method: RecoveryMethod = Field(
        default=RecoveryConfig.recovery_method,
        description="Masakari's segment recovery method: where evacuated instances may go",
    )
    assume_fenced: bool = RecoveryConfig.assume_fenced
    fence_on_isolation: bool = Field(
        default=RecoveryConfig.fence_on_isolation,
        description="a host that only lost its management link is fenced and evacuated",
    )
    fence_action: FenceAction = Field(
        default=RecoveryConfig.fence_action,
        description="a fenced host once nothing is left to evacuate: off (Masakari's) or "
        "reboot (Pacemaker's): powered on, it rejoins as a returning host")
    instance_monitor: bool = Field(
        default=RecoveryConfig.instance_monitor,
        description="restart an instance whose process died on a host that stays up "
        f"(checked every {RecoveryConfig.instance_check_interval_s:g} s; given up after "
        f"{RecoveryConfig.instance_max_restarts} restarts within "
        f"{RecoveryConfig.instance_restart_window_s:g} s)")
    budget_s: float = Field(
        default=900.0, gt=0,
        description="named labs (`stackdrill recover`): the longest the engine watches "
        "before it returns; a drill's engine runs to the drill's end")

    def config(self, *, stop_when_idle: bool) -> RecoveryConfig:
        """The engine's settings for this step: a drill's engine watches to the drill's
        end, a named lab's returns once every failure it saw is handled."""
        chosen = {} if self.parallel is None else {"parallel": self.parallel}
        return RecoveryConfig.for_profile(
            self.profile, assume_fenced=self.assume_fenced, reserved_hosts=self.reserved_hosts,
            recovery_method=self.recovery_method, mode=self.mode,
            fence_on_isolation=self.fence_on_isolation, fence_action=self.fence_action,
            instance_monitor=self.instance_monitor, stop_when_idle=stop_when_idle,
            **chosen)


LABEL = r"^[a-z][a-z0-9-]{0,62}$"


class Step(Frozen):
    """One line of a schedule, a drill's or a named lab's (one per CLI command): exactly
    one of inject, heal, recover, run, observe."""

    at: float = Field(ge=0, description="lab seconds after start")
    id: str | None = Field(default=None, description="name to heal this fault by")
    inject: Fault | None = None
    heal: str | None = Field(default=None, description="id of an injected fault")
    recover: RecoverSpec | None = None
    run: Command | None = None
    observe: str | None = Field(
        default=None, pattern=LABEL,
        description="a checkpoint: every node's view (DRBD, quorum, LVM) at this moment, "
        "for expectations that name it with `at`")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        chosen = [k for k in ("inject", "heal", "recover", "run", "observe")
                  if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of inject, heal, recover, run, observe"
                             + (f" (got {', '.join(chosen)})" if chosen else ""))
        return self


class DrillSpec(Frozen):
    """A drill as written in YAML (topology still a path or an inline mapping)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    description: str = ""
    topology: str | dict[str, Any]
    topology_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="changes to the topology for this drill: 'drbd.r0.protocol: A', "
        "'clusters.pair.two_node: false', 'networks.repl.latency_ms: 30'",
    )
    duration_s: float = Field(default=600.0, gt=0, le=86400)
    seed: int = 1
    workload: Workload = Workload()
    schedule: tuple[Step, ...] = ()
    expect: tuple[Expectation, ...] = ()


class Drill(Frozen):
    """A loaded drill: the spec with its topology validated."""

    spec: DrillSpec
    topology: Topology
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    def faults(self) -> list[tuple[Step, Fault]]:
        return [(s, s.inject) for s in self.spec.schedule if s.inject is not None]
