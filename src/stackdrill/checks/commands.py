"""Operator commands as their tools answered: the ones a drill expects to succeed, the
ones it expects refused (and what the tool printed), the ones still waiting at the end —
and every other command of the schedule finished.

A drill that drives the cluster stack shows its rules through the commands around it: a
node that left the cluster cleanly is not fenced, so the other node's lvcreate is granted
its VG lock under manual fencing; the node that left cannot change the VG until it
rejoins and starts its lockspace. A command with no result (still waiting on a lock
when the drill ended) neither succeeded nor was refused; unless the drill says it waits
(`pending`), it fails the drill: the lab did not do what the schedule asked, and a view
that depended on it was never seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stackdrill.api import CommandResult
from stackdrill.api.commands import Command, command_label, command_summary, step_label
from stackdrill.checks.result import CheckResult

NAME = "commands"
FINISHED = "commands_finished"


@dataclass(frozen=True)
class ScheduledCommand:
    """A command of the schedule: its index, the label its result is kept under, and a
    line naming it for a person."""

    index: int
    label: str
    summary: str

    @classmethod
    def of(cls, index: int, command: Command) -> ScheduledCommand:
        return cls(index, command_label(index, command), command_summary(command))


def command_outcomes(results: Mapping[str, CommandResult], succeeded: Iterable[int],
                     failed: Iterable[int], *, pending: Iterable[int] = (),
                     says: Mapping[int, str] | None = None, name: str = NAME) -> CheckResult:
    ok, bad, waiting = [*succeeded], [*failed], [*pending]
    problems: list[str] = []
    for index in ok:
        result = results.get(step_label(index))
        if result is None:
            problems.append(f"schedule[{index}] never finished")
        elif not result.ok:
            problems.append(f"schedule[{index}] was refused: {result.detail}")
    for index in bad:
        result = results.get(step_label(index))
        if result is None:
            problems.append(f"schedule[{index}] never finished (expected a refusal)")
        elif result.ok:
            problems.append(f"schedule[{index}] succeeded, expected a refusal")
    for index in waiting:
        result = results.get(step_label(index))
        if result is not None:
            problems.append(f"schedule[{index}] finished ({'ok' if result.ok else 'refused'}), "
                            f"expected it still waiting: {result.detail}")
    problems += _said(results, says or {})
    held = f", {len(waiting)} still waiting" if waiting else ""
    return CheckResult.of(name, problems, f"{len(ok)} succeeded, {len(bad)} refused{held} "
                          "as expected", succeeded=ok, failed=bad, pending=waiting)


def _said(results: Mapping[str, CommandResult], says: Mapping[int, str]) -> list[str]:
    """Each named command's output holds its text (a finished one: a missing result is
    already reported by succeeded/failed)."""
    problems = []
    for index, text in sorted(says.items()):
        result = results.get(step_label(index))
        if result is not None and text.lower() not in result.detail.lower():
            problems.append(f"schedule[{index}] did not say {text!r}: {result.detail}")
    return problems


def commands_finished(results: Mapping[str, CommandResult],
                      scheduled: Sequence[ScheduledCommand],
                      pending: Iterable[int] = ()) -> CheckResult:
    """Every command of the schedule has a result by the drill's end, except those the
    drill expects still waiting."""
    waiting = set(pending)
    missing = [c for c in scheduled if c.index not in waiting and c.label not in results]
    problems = [f"schedule[{c.index}] ({c.summary}) never finished" for c in missing]
    held = len(waiting & {c.index for c in scheduled})
    done = len(scheduled) - len(missing) - held
    return CheckResult.of(FINISHED, problems, f"{done} command(s) finished"
                          + (f", {held} still waiting as expected" if held else ""),
                          unfinished=[c.index for c in missing])
