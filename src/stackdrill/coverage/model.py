"""The coverage catalogue as values: one situation of a peer suite and how this lab
rehearses it, or why it does not."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackdrill.errors import InputError
from stackdrill.validation import problems_from_validation
from stackdrill.yamlio import read_mapping

DEFAULT_CATALOGUE = Path("peer-suites.yaml")  # not under lab/: it is neither topology nor drill
DEFAULT_DRILLS = Path("lab/drills")
REAL_BACKENDS = ("netns", "libvirt")


class Suite(StrEnum):
    DRBD9 = "drbd9-tests"
    LVM2 = "lvm2"
    CTS = "pacemaker-cts"
    JEPSEN = "jepsen"


class Status(StrEnum):
    COVERED = "covered"  # drills and a scenario rehearse it
    MISSING = "missing"  # fits the lab; the lab cannot say it yet
    OUT_OF_SCOPE = "out of scope"  # does not fit a two-node DRBD 8.4 lab


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Situation(_Frozen):
    """One test (or theme) of a peer suite."""

    suite: Suite
    test: str = Field(min_length=1, description="as the suite names it")
    rehearses: str = Field(min_length=1, description="what the peer test does")
    asserts: str = Field(min_length=1, description="what the peer test checks")
    drills: tuple[str, ...] = Field(default=(), description="shipped drills that say it")
    scenarios: tuple[str, ...] = Field(default=(), description="FILE::TEST under scenarios/ "
                                       "that run the drills")
    real: tuple[str, ...] = Field(default=(), description="real backends whose CI set runs "
                                  "the scenario (netns, libvirt)")
    partly: str | None = Field(default=None, description="what the drills do not assert")
    missing: str | None = Field(default=None, description="what the lab cannot say yet")
    out_of_scope: str | None = Field(default=None, description="why it does not fit")

    @model_validator(mode="after")
    def _one_status(self) -> Situation:
        covered = bool(self.drills) or bool(self.scenarios)
        given = [covered, self.missing is not None, self.out_of_scope is not None]
        if sum(given) != 1:
            raise ValueError("give drills and scenarios, or missing, or out_of_scope")
        if covered and (not self.drills or not self.scenarios):
            raise ValueError("a covered situation names its drills and its scenarios")
        unknown = sorted(set(self.real) - set(REAL_BACKENDS))
        if unknown or (self.real and not covered):
            raise ValueError(f"real names backends of a covered situation, of "
                             f"{', '.join(REAL_BACKENDS)}")
        return self

    @property
    def status(self) -> Status:
        if self.drills:
            return Status.COVERED
        return Status.MISSING if self.missing is not None else Status.OUT_OF_SCOPE

    @property
    def key(self) -> str:
        return f"{self.suite.value}:{self.test}"


class Catalogue(_Frozen):
    situations: tuple[Situation, ...]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        if not self.situations:
            raise ValueError("list at least one situation")
        keys = [s.key for s in self.situations]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(twice)}")
        return self


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    """The catalogue file, validated (`file: path: problem` on a mistake)."""
    data = read_mapping(path, InputError)
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise InputError(str(path), problems_from_validation(exc, data)) from None
