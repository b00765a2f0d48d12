"""Run the gate: every drill through the project's one path (`execute`, then `judge`, as
`stackdrill run` does), one typed result per drill, one report.

A drill that does not apply stays NOT APPLICABLE; a lab that could not be brought up,
driven or observed gives that drill ERROR (never FAIL) and the gate goes on with the
next; a drill the backend declared it cannot realise is refused before anything runs,
as `stackdrill run` refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

from stackdrill import __version__
from stackdrill.backends import backend_class
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.drill.support import unsupported
from stackdrill.errors import InfrastructureError, UnsupportedError
from stackdrill.gate.builders import standard_drills
from stackdrill.gate.plan import Expect, GateDrill, NotApplicable, Planned
from stackdrill.gate.report import (
    CodeIdentity,
    DrillResult,
    GateReport,
    GateVerdict,
    overall,
    topology_sha256,
)
from stackdrill.report.model import Report
from stackdrill.topology import Topology

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def plan_gate(topology: Topology, extra: Sequence[Planned] = (),
              only: Collection[str] | None = None) -> list[Planned]:
    """The standard drills for this topology, then `extra`; only those named in `only`
    when given (the CLI says which names exist before it calls this)."""
    planned = [*standard_drills(topology), *extra]
    names = [p.name for p in planned]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two gate drills share a name: {', '.join(twice)}")
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ValueError(f"no such gate drill: {', '.join(unknown)} (known: {', '.join(names)})")
    return [p for p in planned if only is None or p.name in only]


def run_gate(topology: Topology, *, backend: str = "sim", seed: int = 1,
             extra: Sequence[Planned] = (), only: Collection[str] | None = None,
             progress: Progress | None = None, topology_source: str = "") -> GateReport:
    """Run the standard drill set (and `extra`) against `topology` on `backend`."""
    say = progress or (lambda _msg: None)
    planned = plan_gate(topology, extra, only)
    cls = backend_class(backend)  # an unknown name is bad input (UnsupportedError)
    refused = [problem for p in planned if isinstance(p, GateDrill)
               for problem in unsupported(p.drill, backend, cls.capabilities)]
    if refused:
        raise UnsupportedError(f"the gate needs what backend {backend} cannot realise:\n"
                               + "\n".join(refused))
    unavailable = cls.available()
    results = []
    for number, item in enumerate(planned, 1):
        head = f"[{number}/{len(planned)}] {item.title}"
        if isinstance(item, NotApplicable):
            say(f"{head}: NOT APPLICABLE: {item.reason}")
            results.append(DrillResult(name=item.name, title=item.title,
                                       verdict=GateVerdict.NOT_APPLICABLE, reason=item.reason))
            continue
        say(f"{head}: {item.victim or item.name}")
        if unavailable is not None:
            reason = f"backend {backend!r} cannot run here: {unavailable}"
            result = _error(item, backend, seed, topology, reason)
        else:
            result = _run_one(item, backend, seed, say)
        say(f"{head}: {result.verdict}" + (f" ({result.reason})" if result.reason else ""))
        results.append(result)
    verdict, reason = overall(tuple(results))
    return GateReport(topology=topology.name, topology_sha256=topology_sha256(topology),
                      topology_source=topology_source, backend=backend, seed=seed,
                      stackdrill=_identity(), date=datetime.now(UTC).isoformat(
                          timespec="seconds"), verdict=verdict, reason=reason,
                      results=tuple(results))


def _run_one(item: GateDrill, backend: str, seed: int, say: Progress) -> DrillResult:
    """One drill through execute and judge, as `stackdrill run` runs it (and under the lab
    name it gives, which the trace records: a drill file of the report reruns to the same
    trace hash)."""
    try:
        finished = execute(item.drill, backend=backend, seed=seed,
                           progress=lambda message: say(f"    {message}"))
    except InfrastructureError as exc:
        return _error(item, backend, seed, item.drill.topology, str(exc))
    return judged(item, judge(finished))


def judged(item: GateDrill, report: Report) -> DrillResult:
    """The gate's verdict on a drill's report, by what the drill was run to show."""
    failed = tuple(f"{c.name}: {c.detail}" for c in report.failed_checks)
    if item.expects is Expect.PASS:
        verdict = GateVerdict.PASS if report.passed else GateVerdict.FAIL
        reason = "" if report.passed else "; ".join(failed)
    elif report.passed:  # a demonstration whose checks held: the damage showed
        verdict = GateVerdict.FAIL
        failed = tuple(f"{c.name}: {c.detail}" for c in report.checks)
        reason = "the damage showed: " + "; ".join(failed)
    else:
        verdict = GateVerdict.PASS
        reason = "the predicted damage did not show: " + "; ".join(failed)
    rtos = [i.rto_s for i in report.instances if i.rto_s is not None]
    return DrillResult(name=item.name, title=item.title, verdict=verdict, victim=item.victim,
                       why=item.why, expects=item.expects, reason=reason,
                       rto_s=max(rtos) if rtos else None,
                       failed=failed if verdict is GateVerdict.FAIL else (), report=report)


def _error(item: GateDrill, backend: str, seed: int, topology: Topology,
           reason: str) -> DrillResult:
    """An infrastructure error: the drill's report in its error state, no verdict."""
    report = Report.infrastructure_error(drill=item.name, backend=backend, seed=seed,
                                         topology=topology.name, reason=reason)
    return DrillResult(name=item.name, title=item.title, verdict=GateVerdict.ERROR,
                       victim=item.victim, why=item.why, expects=item.expects,
                       reason=reason, report=report)


def _identity() -> CodeIdentity:
    from stackdrill.fuzz.version import code_version

    version = code_version()
    return CodeIdentity(version=__version__,
                        commit=version.key if version.commit is not None else None)
