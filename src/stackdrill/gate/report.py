"""The gate's report: one verdict per drill and what a rollout ticket needs to trust it.

A pydantic model serialised as JSON (the same value feeds the CLI's table, its exit code
and the HTML page, so the three agree). It names the topology by name and by the sha256
of its validated content, the backend, seed, stackdrill version and commit and the date,
and carries each drill's full report.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.gate.plan import Expect
from stackdrill.report.model import Report
from stackdrill.topology import Topology

SCHEMA_VERSION = 1


class GateVerdict(StrEnum):
    """A drill's verdict in the gate. ERROR: the lab could not be brought up, driven or
    observed (no verdict about the stack); NOT_APPLICABLE: the topology gives the drill
    nothing to break, never counted as a pass."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    NOT_APPLICABLE = "NOT APPLICABLE"


# stackdrill's exit codes (stackdrill.errors): the gate's own verdict as the process's.
EXIT_CODES = {GateVerdict.PASS: 0, GateVerdict.FAIL: 1, GateVerdict.ERROR: 3}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DrillResult(_Frozen):
    """One drill of the gate: what broke, the verdict, and the drill's own report."""

    name: str
    title: str
    verdict: GateVerdict
    victim: str = ""
    why: str = Field(default="", description="why this victim was chosen")
    expects: Expect = Expect.PASS
    reason: str = Field(default="", description="why not applicable, the infrastructure "
                        "error, or what failed")
    rto_s: float | None = Field(default=None, description="the slowest instance's RTO")
    failed: tuple[str, ...] = Field(default=(), description="'check: detail' of each "
                                    "failed check")
    report: Report | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DrillResult:
        ran = self.verdict in (GateVerdict.PASS, GateVerdict.FAIL)
        if ran and self.report is None:
            raise ValueError(f"{self.name}: a {self.verdict} needs the drill's report")
        if self.verdict is GateVerdict.NOT_APPLICABLE and not self.reason:
            raise ValueError(f"{self.name}: not applicable needs its reason")
        return self


class CodeIdentity(_Frozen):
    """Which stackdrill made the report."""

    version: str
    commit: str | None = Field(default=None, description="git commit (+dirty.<diff sha>) "
                               "when run from a checkout")


class GateReport(_Frozen):
    """The whole gate: the run's identity, the overall verdict, one result per drill."""

    schema_version: int = SCHEMA_VERSION
    topology: str
    topology_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    topology_source: str = ""
    backend: str
    seed: int
    stackdrill: CodeIdentity
    date: str = Field(description="when the gate ran, UTC, ISO 8601")
    verdict: GateVerdict
    reason: str = ""
    results: tuple[DrillResult, ...]

    @model_validator(mode="after")
    def _verdict_matches(self) -> GateReport:
        expected, _why = overall(self.results)
        if self.verdict is not expected:
            raise ValueError(f"verdict {self.verdict} but the drills say {expected}")
        return self

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> GateReport:
        return cls.model_validate_json(text)


def overall(results: tuple[DrillResult, ...]) -> tuple[GateVerdict, str]:
    """FAIL when any drill failed (a known failure blocks a rollout whatever else could not
    run), else ERROR when any could not run, else PASS when at least one ran; a gate where
    no drill applied proved nothing and is a FAIL, never a pass."""
    verdicts = [r.verdict for r in results]
    if GateVerdict.FAIL in verdicts:
        failed = [r.name for r in results if r.verdict is GateVerdict.FAIL]
        return GateVerdict.FAIL, f"failed: {', '.join(failed)}"
    if GateVerdict.ERROR in verdicts:
        errored = [r.name for r in results if r.verdict is GateVerdict.ERROR]
        return GateVerdict.ERROR, f"no verdict (infrastructure error): {', '.join(errored)}"
    if GateVerdict.PASS not in verdicts:
        return GateVerdict.FAIL, "no drill applies to this topology: the gate proved nothing"
    return GateVerdict.PASS, ""


def topology_sha256(topology: Topology) -> str:
    """The sha256 of the validated topology as canonical JSON: the same stack gives the
    same hash whether it came from a YAML file (comments and key order aside) or from an
    import of configuration files."""
    canonical = json.dumps(topology.model_dump(mode="json"), sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
