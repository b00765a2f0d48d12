"""The outcome of one check, shared by every checker, the checklist and the report.

A result says whether the check *ran* as well as whether it held: a check that a
drill declared but that never ran (its phase was not reached, the backend could
not observe what it needs) is a failure with that reason, never a silent pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CheckResult(BaseModel):
    """One check's verdict: `ok` only when it ran and its invariant held."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ok: bool
    detail: str = ""
    ran: bool = True
    data: dict[str, Any] = Field(
        default_factory=dict, description="Machine-readable findings (counts, names, seqs)."
    )

    @model_validator(mode="after")
    def _never_ran_is_never_ok(self) -> CheckResult:
        if not self.ran and self.ok:
            raise ValueError(f"check {self.name!r} did not run, so it cannot be ok")
        return self

    @classmethod
    def passed(cls, name: str, detail: str, **data: Any) -> CheckResult:
        return cls(name=name, ok=True, detail=detail, data=data)

    @classmethod
    def failed(cls, name: str, detail: str, **data: Any) -> CheckResult:
        return cls(name=name, ok=False, detail=detail, data=data)

    @classmethod
    def not_run(cls, name: str, reason: str) -> CheckResult:
        """A declared check that never ran: a failure that says why."""
        return cls(name=name, ok=False, ran=False, detail=f"never ran: {reason}")

    @classmethod
    def of(cls, name: str, problems: list[str], ok_detail: str, **data: Any) -> CheckResult:
        """Fail listing `problems` when there are any, else pass with `ok_detail`."""
        if problems:
            return cls.failed(name, "; ".join(problems), **data)
        return cls.passed(name, ok_detail, **data)


def detected(result: CheckResult, what: str, must_name: str | None = None) -> CheckResult:
    """For a drill that demonstrates damage: pass when the check caught it (and its detail
    names `must_name`), fail when it found none. A check that never ran stays so."""
    if not result.ran:
        return result
    if result.ok:
        return CheckResult.failed(result.name, f"expected {what} to be detected, but the check "
                                  f"found none: {result.detail}")
    if must_name is not None and must_name.lower() not in result.detail.lower():
        return CheckResult.failed(result.name, f"the check failed without naming "
                                  f"{must_name!r}: {result.detail}")
    return CheckResult.passed(result.name, f"detected as expected: {result.detail}",
                              **result.data)
