"""Which checker answers which expectation, and running a drill's expectations.

`CHECKERS` maps each expectation model to a checker of one `CheckContext`; `run_checks`
runs a list of expectations through a `Checklist`, so a declared check that crashed or
returned nothing still fails with the reason. The drill judge and `stackdrill verify`
both judge this way: one meaning of every check name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stackdrill.checks.audit import views_agree
from stackdrill.checks.checklist import Checklist
from stackdrill.checks.commands import FINISHED, command_outcomes, commands_finished
from stackdrill.checks.context import CheckContext
from stackdrill.checks.drbd import DrbdExpectation, drbd_state
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectBlocked,
    ExpectCleanedReturningHost,
    ExpectCommands,
    ExpectDrbd,
    ExpectExactlyOnce,
    ExpectFencingOrder,
    ExpectLvm,
    ExpectNeverStopped,
    ExpectNoIoErrors,
    ExpectNotEvacuated,
    ExpectOverlay,
    ExpectQuorum,
    ExpectRecovered,
    ExpectSingleWriter,
    ExpectThroughput,
    ExpectUnrecoverable,
    ExpectViewsAgree,
    check_names,
)
from stackdrill.checks.fencing import fencing_order, never_stopped, not_evacuated
from stackdrill.checks.lvm import lvm_consistency
from stackdrill.checks.overlay import overlay_probes
from stackdrill.checks.placement import exactly_once, returning_host_clean
from stackdrill.checks.quorum import quorum_state
from stackdrill.checks.recovery import blocked, recovered, unrecoverable
from stackdrill.checks.result import CheckResult, detected
from stackdrill.checks.throughput import overlay_throughput
from stackdrill.checks.writes import acked_writes, no_io_errors, single_writer

Checker = Callable[[Any, CheckContext], CheckResult]  # (its expectation, the context)
NO_LIMIT = 10**9  # `max_lost: null`: count lost writes, never fail on them


def _exactly_once(exp: ExpectExactlyOnce, ctx: CheckContext) -> CheckResult:
    return exactly_once(ctx.evidence.observation, [i.name for i in ctx.topology.instances],
                        expected_hosts=exp.placed)


def _acked_writes(exp: ExpectAckedWrites, ctx: CheckContext) -> CheckResult:
    expected = None
    if exp.predicted_lost:
        expected = ctx.evidence.predicted_lost_writes
        if expected is None:
            return CheckResult.not_run(exp.check, f"backend {ctx.backend!r} cannot predict "
                                       "lost writes")
    return acked_writes(ctx.evidence.history, ctx.evidence.stored,
                        max_lost=exp.max_lost if exp.max_lost is not None else NO_LIMIT,
                        expected_lost=expected)


def _recovered(exp: ExpectRecovered, ctx: CheckContext) -> CheckResult:
    return recovered(ctx.recoveries, exp.instances, attach_mode=exp.attach_mode,
                     hosts_after=exp.hosts_after, state=exp.state)


def _unrecoverable(exp: ExpectUnrecoverable, ctx: CheckContext) -> CheckResult:
    return unrecoverable(ctx.recoveries, exp.instances, exp.reason_contains)


def _blocked(exp: ExpectBlocked, ctx: CheckContext) -> CheckResult:
    placement = {i.name: i.host for i in ctx.topology.instances}
    return blocked(ctx.recoveries, exp.hosts, placement, exp.reason_contains)


def _not_evacuated(exp: ExpectNotEvacuated, ctx: CheckContext) -> CheckResult:
    return not_evacuated(ctx.evidence.events, exp.hosts)


def _never_stopped(exp: ExpectNeverStopped, ctx: CheckContext) -> CheckResult:
    return never_stopped(ctx.evidence.events, exp.instances)


def _never_observed(exp: ExpectLvm | ExpectDrbd | ExpectQuorum) -> CheckResult:
    return CheckResult.not_run(exp.check, f"the observe step {exp.at!r} never ran")


def _lvm(exp: ExpectLvm, ctx: CheckContext) -> CheckResult:
    observation = ctx.observation(exp.at)
    if observation is None:
        return _never_observed(exp)
    result = lvm_consistency([v for v in observation.lvm if v.vg == exp.vg])
    return detected(result, "LVM damage") if exp.damage_expected else result


def _drbd(exp: ExpectDrbd, ctx: CheckContext) -> CheckResult:
    observation = ctx.observation(exp.at)
    if observation is None:
        return _never_observed(exp)
    wanted = [DrbdExpectation(resource=exp.resource, split_brain=exp.split_brain)] \
        if exp.split_brain is not None else []
    wanted += [DrbdExpectation(resource=exp.resource, host=h,
                               fields={k: str(v) for k, v in f.items()})
               for h, f in exp.nodes.items()]
    return drbd_state(observation, wanted)


def _quorum(exp: ExpectQuorum, ctx: CheckContext) -> CheckResult:
    observation = ctx.observation(exp.at)
    if observation is None:
        return _never_observed(exp)
    return quorum_state(observation, exp.cluster, exp.quorate)


def _views_agree(_exp: ExpectViewsAgree, ctx: CheckContext) -> CheckResult:
    return views_agree([*ctx.checkpoints.items(), ("end", ctx.evidence.observation)])


def _commands(exp: ExpectCommands, ctx: CheckContext) -> CheckResult:
    return command_outcomes(ctx.evidence.commands, exp.succeeded, exp.failed,
                            pending=exp.pending, says=exp.says)


def _overlay(exp: ExpectOverlay, ctx: CheckContext) -> CheckResult:
    result = overlay_probes(ctx.evidence.commands, exp.probes, expected_mtu=exp.mtu)
    return result if exp.detects is None else detected(result, exp.detects, exp.detects)


def _throughput(exp: ExpectThroughput, ctx: CheckContext) -> CheckResult:
    return overlay_throughput(ctx.evidence.commands, exp.probes, min_ratio=exp.min_ratio,
                              max_ratio=exp.max_ratio)


def _fencing_order(_exp: ExpectFencingOrder, ctx: CheckContext) -> CheckResult:
    return fencing_order(ctx.evidence.events)


def _no_io_errors(_exp: ExpectNoIoErrors, ctx: CheckContext) -> CheckResult:
    return no_io_errors(ctx.evidence.history)


def _single_writer(_exp: ExpectSingleWriter, ctx: CheckContext) -> CheckResult:
    return single_writer(ctx.evidence.history)


def _returning_host(exp: ExpectCleanedReturningHost, ctx: CheckContext) -> CheckResult:
    return returning_host_clean(ctx.evidence.observation, ctx.outcomes.values(), exp.host)


CHECKERS: Mapping[type[Any], Checker] = {
    ExpectExactlyOnce: _exactly_once,
    ExpectAckedWrites: _acked_writes,
    ExpectRecovered: _recovered,
    ExpectUnrecoverable: _unrecoverable,
    ExpectBlocked: _blocked,
    ExpectNotEvacuated: _not_evacuated,
    ExpectNeverStopped: _never_stopped,
    ExpectLvm: _lvm,
    ExpectDrbd: _drbd,
    ExpectQuorum: _quorum,
    ExpectCommands: _commands,
    ExpectOverlay: _overlay,
    ExpectThroughput: _throughput,
    ExpectFencingOrder: _fencing_order,
    ExpectNoIoErrors: _no_io_errors,
    ExpectSingleWriter: _single_writer,
    ExpectCleanedReturningHost: _returning_host,
    ExpectViewsAgree: _views_agree,
}


def check(expectation: Expectation, context: CheckContext) -> CheckResult:
    """One expectation's result (named by its checker; the checklist renames it)."""
    return CHECKERS[type(expectation)](expectation, context)


def run_checks(expectations: Sequence[Expectation], context: CheckContext) -> list[CheckResult]:
    """Every expectation's result under its unique name, `commands_finished` when the
    schedule ran commands, then a failed "never ran" result for each that produced none."""
    names = check_names(tuple(expectations))
    checklist = Checklist(names)
    for expectation, name in zip(expectations, names, strict=True):
        checklist.run(name, check, expectation, context)
    if context.scheduled:  # implicit: nothing the schedule asked for was left hanging
        pending = [i for e in expectations if isinstance(e, ExpectCommands) for i in e.pending]
        checklist.run(FINISHED, commands_finished, context.evidence.commands,
                      context.scheduled, pending)
    return checklist.finish()
