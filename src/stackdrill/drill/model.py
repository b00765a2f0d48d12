"""A drill: a topology, a workload, a schedule of faults and actions, and expectations.

Drills are YAML under `lab/drills/`; `stackdrill schema` prints their JSON Schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.api import LabOptions
from stackdrill.api.commands import Command
from stackdrill.faults import Fault
from stackdrill.recovery import Mode, Profile, RecoveryConfig, RecoveryMethod
from stackdrill.topology import Topology
from stackdrill.yamlio import register_union_tags


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Workload(Frozen):
    """Each instance writes numbered, checksummed records to its first volume."""

    write_interval_s: float = Field(default=LabOptions.write_interval_s, gt=0,
                                    description="one record per interval")
    instances: Literal["all"] | tuple[str, ...] = "all"


class RecoverSpec(Frozen):
    """Start the recovery engine at this time; it monitors, detects, fences and evacuates.

    Every default is the engine's own (`RecoveryConfig`, or the profile's where the
    profile sets one), so a drill, a named lab and `stackdrill recover` never disagree."""

    parallel: int | None = Field(
        default=None, ge=1, le=256,
        description=f"instances recovered at once; default: the profile's "
        f"(stackdrill {RecoveryConfig().parallel}, masakari {RecoveryConfig.masakari().parallel})")
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
            fence_on_isolation=self.fence_on_isolation, stop_when_idle=stop_when_idle,
            **chosen)


class Step(Frozen):
    """One line of a schedule, a drill's or a named lab's (one per CLI command): exactly
    one of inject, heal, recover, run."""

    at: float = Field(ge=0, description="lab seconds after start")
    id: str | None = Field(default=None, description="name to heal this fault by")
    inject: Fault | None = None
    heal: str | None = Field(default=None, description="id of an injected fault")
    recover: RecoverSpec | None = None
    run: Command | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        chosen = [k for k in ("inject", "heal", "recover", "run") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of inject, heal, recover, run"
                             + (f" (got {', '.join(chosen)})" if chosen else ""))
        return self


# ---------------------------------------------------------------- expectations


class ExpectExactlyOnce(Frozen):
    check: Literal["exactly_once"] = "exactly_once"


class ExpectAckedWrites(Frozen):
    check: Literal["acked_writes"] = "acked_writes"
    max_lost: int | None = Field(default=0, ge=0, description="None: count only, never fail")
    predicted_lost: bool = Field(
        default=False, description="lost count must equal the DRBD model's prediction"
    )


class ExpectRecovered(Frozen):
    check: Literal["recovered"] = "recovered"
    instances: Literal["all"] | tuple[str, ...] = "all"
    attach_mode: Literal["local", "remote"] | None = None
    hosts_after: tuple[str, ...] = Field(
        default=(), description="recovered instances must have landed on one of these hosts")


class ExpectUnrecoverable(Frozen):
    """These instances cannot be recovered and the engine must say so, with a reason."""

    check: Literal["unrecoverable"] = "unrecoverable"
    instances: tuple[str, ...] = Field(min_length=1)
    reason_contains: str = ""


class ExpectBlocked(Frozen):
    """These hosts could not be fenced: the engine must refuse to recover their instances
    (none may start elsewhere) and say why, with this text in the reason."""

    check: Literal["blocked"] = "blocked"
    hosts: tuple[str, ...] = Field(min_length=1)
    reason_contains: str = ""


class ExpectNotEvacuated(Frozen):
    check: Literal["not_evacuated"] = "not_evacuated"
    hosts: tuple[str, ...]


class ExpectLvm(Frozen):
    check: Literal["lvm_consistent"] = "lvm_consistent"
    vg: str
    damage_expected: bool = Field(
        default=False, description="the drill demonstrates corruption and passes if detected"
    )


class ExpectDrbd(Frozen):
    check: Literal["drbd"] = "drbd"
    resource: str
    split_brain: bool | None = None
    nodes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="host -> {role, disk, connection} expected at the end"
    )


class ExpectQuorum(Frozen):
    check: Literal["quorum"] = "quorum"
    cluster: str
    quorate: dict[str, bool]


class ExpectOverlay(Frozen):
    """Reachability, ARP and path MTU over the probes with these labels."""

    check: Literal["overlay"] = "overlay"
    probes: tuple[str, ...] = Field(min_length=1, description="labels of probe steps")
    mtu: int = Field(default=1450, description="the path MTU every pair must show")
    detects: str | None = Field(
        default=None, description="the drill injects this failure: pass only when the overlay "
        "check fails and its detail names it (e.g. 'blackhole')")


class ExpectFencingOrder(Frozen):
    check: Literal["fencing_order"] = "fencing_order"


class ExpectSingleWriter(Frozen):
    """No volume ever had two writers (a returning or thawed host's zombie guest)."""

    check: Literal["single_writer"] = "single_writer"


class ExpectNoIoErrors(Frozen):
    check: Literal["no_io_errors"] = "no_io_errors"


class ExpectCleanedReturningHost(Frozen):
    check: Literal["returning_host_clean"] = "returning_host_clean"
    host: str


Expectation = Annotated[
    ExpectExactlyOnce | ExpectAckedWrites | ExpectRecovered | ExpectUnrecoverable
    | ExpectBlocked | ExpectNotEvacuated | ExpectLvm
    | ExpectDrbd | ExpectQuorum | ExpectOverlay | ExpectFencingOrder | ExpectNoIoErrors
    | ExpectSingleWriter
    | ExpectCleanedReturningHost,
    Field(discriminator="check"),
]
register_union_tags({"exactly_once", "acked_writes", "recovered", "unrecoverable",
                     "blocked", "not_evacuated",
                     "lvm_consistent", "drbd", "quorum", "overlay", "fencing_order",
                     "no_io_errors", "returning_host_clean", "single_writer"})


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
