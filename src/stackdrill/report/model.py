"""The drill report: what happened, in lab time, and whether every expectation held.

Immutable pydantic models serialised as JSON; the same report feeds the CLI's exit
code, the HTML page and the Allure attachments, so all three always agree. Times
are lab seconds (simulated or since the lab started), never wall-clock dates, so a
sim report is reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.checks.result import CheckResult
from stackdrill.faults import Fault, describe

# "error": an infrastructure error (the lab could not be brought up, driven or observed):
# no verdict about the recovery under test; `error` says why.
Verdict = Literal["pass", "fail", "error"]
LANES = ("fault", "detection", "fencing", "planning", "check")  # plus "instance:<name>"
SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


RTO_TOLERANCE_S = 1e-6  # float noise when phases are added up


class TimeSlice(_Frozen):
    """One phase of an instance's way back, from the end of the phase before it: the
    slices of an instance are contiguous from the fault to verified running, so they add
    up to its RTO."""

    phase: str
    start: float
    end: float

    @model_validator(mode="after")
    def _ordered(self) -> TimeSlice:
        if self.end < self.start:
            raise ValueError(f"phase {self.phase!r} ends before it starts")
        return self

    @property
    def seconds(self) -> float:
        return self.end - self.start


WriteFateName = Literal["acked", "lost", "corrupt", "failed", "unknown"]


class WriteRun(_Frozen):
    """Consecutive writes of one instance to one volume from one host with the same fate
    (acked and still there, lost, corrupt, failed, unknown): the timeline draws each run
    where it happened, and a lost write is never folded into an acked run."""

    instance: str
    volume: str
    host: str
    fate: WriteFateName
    start: float = Field(description="the first write's invocation")
    end: float = Field(description="the last write's completion (or invocation if unknown)")
    count: int = Field(ge=1)
    first_seq: int
    last_seq: int


class InstanceReport(_Frozen):
    """One instance across the drill: where it ran, where it runs, and its data."""

    name: str
    host_before: str | None
    host_after: str | None
    state: str = Field(description="running | recovered | restarted | resumed | lost | failed "
                       "| stopped")
    acked_writes: int = Field(default=0, ge=0)
    lost_writes: int = Field(default=0, ge=0)
    rto_s: float | None = Field(default=None, description="fault to verified running; None: never")
    attach_mode: str | None = Field(default=None, description="local | remote volume attachment")
    reason: str = ""
    restarts: int = Field(default=0, ge=0, description="times the engine restarted it on its "
                          "host after its process died (Pacemaker's failcount)")
    time_spent: tuple[TimeSlice, ...] = Field(
        default=(), description="the RTO phase by phase: detection from the fault's "
        "injection, then each phase from the end of the one before, to verified running")

    @model_validator(mode="after")
    def _slices_add_up(self) -> InstanceReport:
        if not self.time_spent:
            return self
        gaps = [(a.phase, b.phase) for a, b in zip(self.time_spent, self.time_spent[1:],
                                                   strict=False)
                if abs(b.start - a.end) > RTO_TOLERANCE_S]
        if gaps:
            raise ValueError(f"{self.name}: phases not contiguous: {gaps}")
        total = self.time_spent[-1].end - self.time_spent[0].start
        if self.rto_s is None or abs(total - self.rto_s) > RTO_TOLERANCE_S:
            raise ValueError(f"{self.name}: phases add up to {total:.3f} s, RTO {self.rto_s}")
        return self


class FaultRecord(_Frozen):
    at: float
    kind: str
    description: str
    healed_at: float | None = None
    fault: dict[str, Any] = Field(default_factory=dict, description="the fault value itself")

    @classmethod
    def of(cls, fault: Fault, at: float, healed_at: float | None = None) -> FaultRecord:
        return cls(
            at=at,
            kind=fault.kind,
            description=describe(fault),
            healed_at=healed_at,
            fault=fault.model_dump(mode="json"),
        )


class TimelineEvent(_Frozen):
    """A point (no `end`) or a span on one lane of the timeline picture."""

    at: float
    lane: str = Field(description="fault | detection | fencing | planning | instance:<n> | check")
    label: str
    end: float | None = None
    ok: bool | None = Field(default=None, description="False draws the event as a failure")

    @model_validator(mode="after")
    def _ordered(self) -> TimelineEvent:
        if self.end is not None and self.end < self.at:
            raise ValueError(f"timeline event {self.label!r} ends before it starts")
        return self


def order_lanes(events: Iterable[TimelineEvent]) -> list[str]:
    """fault, detection, fencing, planning, then other lanes (instances) by first event,
    check last."""
    first: dict[str, float] = {}
    for e in events:
        first[e.lane] = min(first.get(e.lane, e.at), e.at)
    fixed = [lane for lane in LANES[:-1] if lane in first]
    others = sorted(set(first) - set(LANES), key=lambda lane: (first[lane], lane))
    return fixed + others + (["check"] if "check" in first else [])


def verdict_for(checks: Iterable[CheckResult]) -> Verdict:
    """pass only when at least one check ran and every check is ok (nothing checked is
    not a pass)."""
    results = list(checks)
    return "pass" if results and all(c.ok for c in results) else "fail"


class Report(_Frozen):
    """One drill's report; `verdict` must agree with `checks`."""

    schema_version: int = SCHEMA_VERSION
    drill: str
    backend: str
    seed: int
    verdict: Verdict
    trace_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    topology: str = ""
    started: float = Field(default=0.0, description="lab time the drill started")
    duration: float = Field(default=0.0, ge=0, description="lab seconds from start to end")
    instances: tuple[InstanceReport, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    faults: tuple[FaultRecord, ...] = ()
    timeline: tuple[TimelineEvent, ...] = ()
    writes: tuple[WriteRun, ...] = Field(default=(), description="the workloads' writes, "
                                         "as runs of one fate, in time order")
    phases: dict[str, float] = Field(
        default_factory=dict, description="phase -> lab seconds (fault, detection, fencing, ...)"
    )
    steps: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="instance -> recovery step -> lab seconds"
    )
    state_before: dict[str, Any] = Field(default_factory=dict, description="drbd/lvm/quorum")
    state_after: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    error: str = Field(default="", description="verdict 'error': the infrastructure error")

    @model_validator(mode="after")
    def _verdict_matches_checks(self) -> Report:
        if self.verdict == "pass" and verdict_for(self.checks) == "fail":
            failed = [c.name for c in self.checks if not c.ok] or ["(no check ran)"]
            raise ValueError(f"verdict 'pass' but checks failed: {', '.join(failed)}")
        if (self.verdict == "error") != bool(self.error):
            raise ValueError("an 'error' report needs its reason, and only it has one")
        if self.verdict == "error" and self.checks:
            raise ValueError("an 'error' report has no checks: nothing was judged")
        return self

    @classmethod
    def infrastructure_error(cls, *, drill: str, backend: str, seed: int, topology: str,
                             reason: str) -> Report:
        """The report of a run that ended in an infrastructure error: no checks, no
        verdict about the recovery, the reason."""
        return cls(drill=drill, backend=backend, seed=seed, topology=topology,
                   verdict="error", error=reason)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def errored(self) -> bool:
        """True when the run ended in an infrastructure error (no verdict)."""
        return self.verdict == "error"

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    def lanes(self) -> list[str]:
        """Timeline lanes in reading order: faults first, each instance, checks last."""
        return order_lanes(self.timeline)

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        return cls.model_validate_json(text)
