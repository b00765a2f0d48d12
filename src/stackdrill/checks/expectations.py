"""What a drill may expect of its end state: one model per check, as written in YAML.

The `check` field names the checker (`checks.table` maps each model to it); a drill's
`expect:` list is a tuple of `Expectation`. They live here, below the drill package, so
the drill runner, the named-lab `verify` command and the fuzzer all declare the same
checks in the same words.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.topology import Topology
from stackdrill.yamlio import register_union_tags


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


AT = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,62}$",
           description="the label of an observe step: the state then, not at the end")


class ExpectExactlyOnce(_Frozen):
    check: Literal["exactly_once"] = "exactly_once"
    placed: dict[str, str] = Field(
        default_factory=dict, description="instance -> the host it must run on at the end "
        "(the lab's ground truth, e.g. restarted where it died)")


class ExpectAckedWrites(_Frozen):
    check: Literal["acked_writes"] = "acked_writes"
    max_lost: int | None = Field(default=0, ge=0, description="None: count only, never fail")
    predicted_lost: bool = Field(
        default=False, description="lost count must equal the DRBD model's prediction"
    )


class ExpectRecovered(_Frozen):
    check: Literal["recovered"] = "recovered"
    instances: Literal["all"] | tuple[str, ...] = "all"
    attach_mode: Literal["local", "remote"] | None = None
    hosts_after: tuple[str, ...] = Field(
        default=(), description="recovered instances must have landed on one of these hosts")
    state: Literal["recovered", "resumed", "restarted"] | None = Field(
        default=None, description="each named instance must end in this state (restarted: "
        "started again on its host after its process died), not merely fine")


class ExpectUnrecoverable(_Frozen):
    """These instances cannot be recovered and the engine must say so, with a reason."""

    check: Literal["unrecoverable"] = "unrecoverable"
    instances: tuple[str, ...] = Field(min_length=1)
    reason_contains: str = ""


class ExpectBlocked(_Frozen):
    """These hosts could not be fenced: the engine must refuse to recover their instances
    (none may start elsewhere) and say why, with this text in the reason."""

    check: Literal["blocked"] = "blocked"
    hosts: tuple[str, ...] = Field(min_length=1)
    reason_contains: str = ""


class ExpectNotEvacuated(_Frozen):
    check: Literal["not_evacuated"] = "not_evacuated"
    hosts: tuple[str, ...]


class ExpectNeverStopped(_Frozen):
    """These instances never stopped during the drill (the lab's own guest events): a
    fault aimed at another instance, and its recovery, left them alone."""

    check: Literal["never_stopped"] = "never_stopped"
    instances: tuple[str, ...] = Field(min_length=1)


class ExpectLvm(_Frozen):
    check: Literal["lvm_consistent"] = "lvm_consistent"
    vg: str
    at: str | None = AT
    damage_expected: bool = Field(
        default=False, description="the drill demonstrates corruption and passes if detected"
    )


class ExpectDrbd(_Frozen):
    check: Literal["drbd"] = "drbd"
    resource: str
    at: str | None = AT
    split_brain: bool | None = None
    nodes: dict[str, dict[str, str | bool | int]] = Field(
        default_factory=dict, description="host -> {role, disk, connection, peer_role, "
        "peer_disk, out_of_sync_kb, out_of_sync_pct, suspended} expected at the end (or at `at`)"
    )


class ExpectQuorum(_Frozen):
    check: Literal["quorum"] = "quorum"
    cluster: str
    at: str | None = AT
    quorate: dict[str, bool]


class ExpectViewsAgree(_Frozen):
    """Pacemaker CTS's audits: at every observe step and at the end, the nodes' views agree
    (DRBD peers see each other's role and disk; cluster members see the same membership)."""

    check: Literal["views_agree"] = "views_agree"


class ExpectCommands(_Frozen):
    """Operator commands, named by their index in the schedule: those that must succeed,
    those the tool must refuse, those still waiting when the drill ends (an lvcreate held
    on a lock the DLM keeps while it waits for a fence), and what a finished one printed.

    Every other command of the schedule must have finished by the drill's end: the
    implicit `commands_finished` check fails the drill for one that did not."""

    check: Literal["commands"] = "commands"
    succeeded: tuple[Annotated[int, Field(ge=0)], ...] = ()
    failed: tuple[Annotated[int, Field(ge=0)], ...] = ()
    pending: tuple[Annotated[int, Field(ge=0)], ...] = Field(
        default=(), description="still waiting when the drill ends, as the real tool would be")
    says: dict[Annotated[int, Field(ge=0)], Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict,
        description="index -> text the tool printed (case-insensitive), e.g. a refusal's "
        "'Multiple primaries not allowed'; each index is in succeeded or failed")

    @model_validator(mode="after")
    def _names_some(self) -> ExpectCommands:
        groups = (self.succeeded, self.failed, self.pending)
        if not any(groups):
            raise ValueError("name at least one schedule index in succeeded, failed or pending")
        named = [i for g in groups for i in g]
        if len(named) != len(set(named)):
            raise ValueError("a command is in one of succeeded, failed and pending only")
        unfinished = sorted(set(self.says) - set(self.succeeded) - set(self.failed))
        if unfinished:
            raise ValueError(f"says names {unfinished}: only a command in succeeded or "
                             "failed prints something to compare")
        return self


class ExpectOverlay(_Frozen):
    """Reachability, ARP and path MTU over the probes with these labels."""

    check: Literal["overlay"] = "overlay"
    probes: tuple[str, ...] = Field(min_length=1, description="labels of probe steps")
    mtu: int = Field(default=1450, description="the path MTU every pair must show")
    detects: str | None = Field(
        default=None, description="the drill injects this failure: pass only when the overlay "
        "check fails and its detail names it (e.g. 'blackhole')")


class ExpectThroughput(_Frozen):
    """The overlay/underlay throughput ratio of the iperf3 probes with these labels."""

    check: Literal["throughput"] = "throughput"
    probes: tuple[str, ...] = Field(min_length=1, description="labels of iperf3 steps")
    min_ratio: float = Field(default=0.9, gt=0, description="overlay/underlay, at least")
    max_ratio: float = Field(default=1.0, gt=0, description="overlay/underlay, at most")

    @model_validator(mode="after")
    def _a_range(self) -> ExpectThroughput:
        if self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio {self.min_ratio:g} is above max_ratio "
                             f"{self.max_ratio:g}")
        return self


class ExpectFencingOrder(_Frozen):
    check: Literal["fencing_order"] = "fencing_order"


class ExpectSingleWriter(_Frozen):
    """No volume ever had two writers (a returning or thawed host's zombie guest)."""

    check: Literal["single_writer"] = "single_writer"


class ExpectNoIoErrors(_Frozen):
    check: Literal["no_io_errors"] = "no_io_errors"


class ExpectCleanedReturningHost(_Frozen):
    check: Literal["returning_host_clean"] = "returning_host_clean"
    host: str


Expectation = Annotated[
    ExpectExactlyOnce | ExpectAckedWrites | ExpectRecovered | ExpectUnrecoverable
    | ExpectBlocked | ExpectNotEvacuated | ExpectNeverStopped | ExpectLvm
    | ExpectDrbd | ExpectQuorum | ExpectCommands | ExpectOverlay | ExpectThroughput
    | ExpectFencingOrder
    | ExpectNoIoErrors | ExpectSingleWriter
    | ExpectCleanedReturningHost | ExpectViewsAgree,
    Field(discriminator="check"),
]
register_union_tags({"exactly_once", "acked_writes", "recovered", "unrecoverable",
                     "blocked", "not_evacuated", "never_stopped",
                     "lvm_consistent", "drbd", "quorum", "commands", "overlay", "throughput",
                     "fencing_order",
                     "no_io_errors", "returning_host_clean", "single_writer", "views_agree"})


def _subject(exp: BaseModel) -> str | None:
    """What one expectation is about, when a drill may declare several of its kind."""
    for field in ("vg", "resource", "cluster", "host"):
        value = getattr(exp, field, None)
        if value:
            return str(value)
    return None


def check_names(expectations: tuple[Expectation, ...]) -> list[str]:
    """Readable, unique check names: 'drbd[r0]', 'quorum[pair]', 'overlay#2'."""
    names: list[str] = []
    for exp in expectations:
        subject = _subject(exp)
        name = f"{exp.check}[{subject}]" if subject else exp.check
        at = getattr(exp, "at", None)
        name += f"@{at}" if at else ""
        if name in names:
            name = f"{name}#{sum(n.split('#')[0] == name for n in names) + 1}"
        names.append(name)
    return names


def verify_now(topology: Topology, *, observes_lvm: bool) -> tuple[Expectation, ...]:
    """What an operator's "verify the lab now" means: every instance runs exactly once, no
    acknowledged write is lost, and each volume group of the lab is consistent on every
    host that sees it — when the backend observes LVM at all (`lvm` in its features)."""
    lvm = tuple(ExpectLvm(vg=vg.name) for vg in topology.volume_groups) if observes_lvm else ()
    return (ExpectExactlyOnce(), ExpectAckedWrites(), *lvm)
