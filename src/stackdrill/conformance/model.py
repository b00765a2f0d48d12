"""The conformance corpus's values: a situation, a recording of it, tolerances, a comparison.

A situation run on a real backend (the kernel in namespaces, real guests) gives a
recording: what was observed, field by field, with the software versions it was observed
on. The same situation run on the simulator gives the same fields; each field declares how
closely the two must agree (exactly, or within an absolute or relative margin).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

RecordingBackend = Literal["netns", "libvirt"]
Scalar = StrictBool | StrictInt | StrictFloat | str | None


class Observed(BaseModel):
    """One observed field: a number with its unit, a state, a boolean, or None (nothing
    was observed, e.g. tracepath got no answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    value: Scalar
    unit: str | None = None

    def show(self) -> str:
        if self.value is None:
            return "-"
        if isinstance(self.value, float):
            text = f"{self.value:.4g}"
        else:
            text = str(self.value).lower() if isinstance(self.value, bool) else str(self.value)
        return f"{text} {self.unit}" if self.unit else text


Fields = dict[str, Observed]


class Recording(BaseModel):
    """What one situation gave on one real backend, and on what software."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    situation: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    backend: RecordingBackend
    recorded_on: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="ISO date")
    versions: dict[str, str] = Field(min_length=1, description="software -> version")
    fields: Fields = Field(min_length=1)
    notes: str = ""


@dataclass(frozen=True)
class Tolerance:
    """How close a simulated field must be to the recorded one: exactly equal, or within
    `margin` (absolute, in the field's unit; or relative, a fraction of the recorded)."""

    kind: Literal["exact", "absolute", "relative"] = "exact"
    margin: float = 0.0

    def agrees(self, recorded: Scalar, simulated: Scalar) -> bool:
        if self.kind == "exact" or not _number(recorded) or not _number(simulated):
            return recorded == simulated and type(recorded) is type(simulated)
        assert isinstance(recorded, int | float) and isinstance(simulated, int | float)
        allowed = self.margin if self.kind == "absolute" else self.margin * abs(recorded)
        return math.isfinite(simulated) and abs(simulated - recorded) <= allowed + 1e-12

    def show(self) -> str:
        if self.kind == "exact":
            return "exact"
        return f"±{self.margin:g}" if self.kind == "absolute" else f"±{self.margin:.0%}"


def _number(value: Scalar) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


EXACT = Tolerance()


def within(margin: float) -> Tolerance:
    return Tolerance("absolute", margin)


def relative(fraction: float) -> Tolerance:
    return Tolerance("relative", fraction)


Recorder = Callable[[], Fields]


@dataclass(frozen=True)
class Situation:
    """One thing the real software does that the simulator must reproduce: what it
    exercises, the fields it observes with their tolerances, how the simulator runs it,
    and which real backends can record it (each with its recorder)."""

    name: str
    exercises: str
    tolerances: Mapping[str, Tolerance]
    simulate: Recorder
    recorders: Mapping[RecordingBackend, Recorder] = field(default_factory=dict)
    # fields the model deliberately does not reproduce -> why: shown beside the recording,
    # never counted as agreement (the "listed with why")
    not_modelled: Mapping[str, str] = field(default_factory=dict)

    @property
    def backends(self) -> tuple[RecordingBackend, ...]:
        return tuple(sorted(self.recorders))


@dataclass(frozen=True)
class FieldComparison:
    name: str
    recorded: Observed
    simulated: Observed | None  # None: the simulator did not produce the field
    tolerance: Tolerance
    agrees: bool
    not_modelled: str = ""  # why the model does not reproduce this field ("" = it does)

    @property
    def verdict(self) -> str:
        return "not modelled" if self.not_modelled else ("agree" if self.agrees else "DIFFER")


@dataclass(frozen=True)
class Comparison:
    """One recording against one simulator run, field by field."""

    situation: str
    exercises: str
    backend: RecordingBackend
    versions: Mapping[str, str]
    recorded_on: str
    rows: tuple[FieldComparison, ...]

    @property
    def agrees(self) -> bool:
        """Every field the model covers agrees (and it covers at least one)."""
        covered = [row for row in self.rows if not row.not_modelled]
        return bool(covered) and all(row.agrees for row in covered)

    @property
    def differing(self) -> tuple[FieldComparison, ...]:
        return tuple(row for row in self.rows if not row.agrees and not row.not_modelled)

    @property
    def uncovered(self) -> tuple[FieldComparison, ...]:
        return tuple(row for row in self.rows if row.not_modelled)
