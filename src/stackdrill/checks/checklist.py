"""The checks a drill declared, and which of them actually ran.

A drill that declares a check and ends without running it — its phase was never
reached, the backend cannot observe what it needs, the checker crashed — must fail
with that reason. A silent pass is a bug, so `finish()` turns every declared check
without a result into a failed, not-run CheckResult.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import ParamSpec

from stackdrill.checks.result import CheckResult

log = logging.getLogger(__name__)
P = ParamSpec("P")


class Checklist:
    """Declared checks (each optionally tied to the phase that runs it) and their results."""

    def __init__(self, declared: Iterable[str | tuple[str, str]] = ()) -> None:
        self._phase_of: dict[str, str | None] = {}
        self._reached: list[str] = []
        self._results: list[CheckResult] = []
        self._blocked: dict[str, str] = {}
        for item in declared:
            name, phase = (item, None) if isinstance(item, str) else item
            self.declare(name, phase=phase)

    def declare(self, name: str, *, phase: str | None = None) -> None:
        """A check the drill promises to run (in `phase`, when given)."""
        self._phase_of[name] = phase

    def reached(self, phase: str) -> None:
        """Mark that the drill got to `phase` (a check of an unreached phase 'never ran')."""
        if phase not in self._reached:
            self._reached.append(phase)

    def cannot_observe(self, name: str, what: str, backend: str = "the backend") -> None:
        """Record why a declared check cannot run: `backend cannot observe <what>`."""
        self._blocked[name] = f"{backend} cannot observe {what}"

    def record(self, result: CheckResult) -> CheckResult:
        """Keep a result (a check may run several times; every result counts)."""
        log.debug("check %s ok=%s ran=%s: %s", result.name, result.ok, result.ran, result.detail)
        self._results.append(result)
        return result

    def run(
        self, name: str, checker: Callable[P, CheckResult], *args: P.args, **kwargs: P.kwargs
    ) -> CheckResult:
        """Run a checker and record its result under `name`; a checker that raises gives a
        failed result with the error instead of ending the drill without a verdict."""
        try:
            result = checker(*args, **kwargs)
        except Exception as exc:
            log.exception("check %s crashed", name)
            result = CheckResult.failed(name, f"check crashed: {type(exc).__name__}: {exc}")
        if result.name != name:
            result = result.model_copy(update={"name": name})
        return self.record(result)

    @property
    def results(self) -> list[CheckResult]:
        return list(self._results)

    def missing(self) -> list[str]:
        """Declared checks without any result so far."""
        ran = {r.name for r in self._results}
        return [n for n in self._phase_of if n not in ran]

    def _reason(self, name: str) -> str:
        if name in self._blocked:
            return self._blocked[name]
        phase = self._phase_of.get(name)
        if phase is not None and phase not in self._reached:
            return f"phase {phase} not reached"
        return "no result was recorded"

    def finish(self) -> list[CheckResult]:
        """Every result, then a failed not-run result for each declared check that never ran."""
        return self.results + [CheckResult.not_run(n, self._reason(n)) for n in self.missing()]

    def ok(self) -> bool:
        results = self.finish()
        return bool(results) and all(r.ok for r in results)
