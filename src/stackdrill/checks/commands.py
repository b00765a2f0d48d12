"""Operator commands as their tools answered: the ones a drill expects to succeed, and the
ones it expects refused.

A drill that drives the cluster stack shows its rules through the commands around it: a
node that left the cluster cleanly is not fenced, so the other node's lvcreate is granted
its VG lock under manual fencing; the node that left cannot change the VG until it
rejoins and starts its lockspace. A command with no result (still waiting on a lock
when the drill ended) neither succeeded nor was refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.api import CommandResult
from stackdrill.checks.result import CheckResult

NAME = "commands"


def step_label(index: int) -> str:
    """The label the drill player gives schedule[index]'s command (probes have their own)."""
    return f"step-{index}"


def command_outcomes(results: Mapping[str, CommandResult], succeeded: Iterable[int],
                     failed: Iterable[int], *, name: str = NAME) -> CheckResult:
    problems: list[str] = []
    for index in succeeded:
        result = results.get(step_label(index))
        if result is None:
            problems.append(f"schedule[{index}] never finished")
        elif not result.ok:
            problems.append(f"schedule[{index}] was refused: {result.detail}")
    for index in failed:
        result = results.get(step_label(index))
        if result is None:
            problems.append(f"schedule[{index}] never finished (expected a refusal)")
        elif result.ok:
            problems.append(f"schedule[{index}] succeeded, expected a refusal")
    ok = [*succeeded]
    bad = [*failed]
    return CheckResult.of(name, problems, f"{len(ok)} succeeded, {len(bad)} refused as "
                                          "expected", succeeded=ok, failed=bad)
