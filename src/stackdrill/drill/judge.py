"""Judge a finished drill: its declared expectations through the checkers, then the report.

Checks look at the lab's own ground truth (what runs where, what is on each replica,
the power and hypervisor events), never at what the recovery engine claims it did —
except the checks about the engine's own answers. `checks.run_checks` maps each
expectation to its checker and fails any that never ran; `report.build` turns the run
and the results into the report.
"""

from __future__ import annotations

from stackdrill.checks import CheckContext, run_checks
from stackdrill.checks.commands import ScheduledCommand
from stackdrill.drill.runner import DrillRun
from stackdrill.report.build import DrillRecord, build_report
from stackdrill.report.model import Report


def check_context(run: DrillRun) -> CheckContext:
    """What the checkers of a finished run may read."""
    scheduled = tuple(ScheduledCommand.of(i, step.run)
                      for i, step in enumerate(run.drill.spec.schedule) if step.run is not None)
    return CheckContext(evidence=run.final, topology=run.drill.topology, backend=run.backend,
                        recoveries=tuple(run.recoveries), fault_log=tuple(run.fault_log),
                        scheduled=scheduled, checkpoints=dict(run.checkpoints))


def judge(run: DrillRun) -> Report:
    context = check_context(run)
    results = run_checks(run.drill.spec.expect, context)
    record = DrillRecord(drill=run.drill.name, seed=run.seed, context=context,
                         recovery_events=tuple(run.events), state_before=run.state_before,
                         ended_at=run.ended_at, trace_sha256=run.trace_sha256)
    return build_report(record, results)
