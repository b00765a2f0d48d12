"""Operator commands a drill expects to succeed or to be refused, as their tools answered."""

from __future__ import annotations

from stackdrill.api import CommandResult
from stackdrill.checks.commands import ScheduledCommand, command_outcomes, commands_finished

RESULTS = {
    "step-0": CommandResult(ok=True, detail="cluster stack stop on bob"),
    "step-1": CommandResult(ok=False, detail="LvmError: Cannot access VG vg due to failed lock."),
}


def test_commands_that_answered_as_expected_pass() -> None:
    r = command_outcomes(RESULTS, succeeded=[0], failed=[1])
    assert r.ok and r.detail == "1 succeeded, 1 refused as expected"


def test_a_refused_command_expected_to_succeed_fails_with_what_the_tool_said() -> None:
    r = command_outcomes(RESULTS, succeeded=[1], failed=[0])
    assert not r.ok
    assert r.detail == ("schedule[1] was refused: LvmError: Cannot access VG vg due to failed "
                        "lock.; schedule[0] succeeded, expected a refusal")


def test_a_command_still_waiting_at_the_end_neither_succeeded_nor_was_refused() -> None:
    """A VG lock that waits forever for a fence acknowledgement leaves no result."""
    r = command_outcomes(RESULTS, succeeded=[4], failed=[5])
    assert r.detail == ("schedule[4] never finished; schedule[5] never finished (expected a "
                        "refusal)")


def test_a_command_expected_still_waiting_passes_only_while_it_waits() -> None:
    assert command_outcomes(RESULTS, succeeded=[0], failed=[], pending=[4]).ok
    r = command_outcomes(RESULTS, succeeded=[], failed=[], pending=[0])
    assert not r.ok
    assert r.detail.startswith("schedule[0] finished (ok), expected it still waiting")


def test_says_compares_what_the_tool_printed_case_insensitively() -> None:
    assert command_outcomes(RESULTS, succeeded=[], failed=[1],
                            says={1: "cannot access vg vg due to FAILED lock"}).ok
    r = command_outcomes(RESULTS, succeeded=[], failed=[1], says={1: "Multiple primaries"})
    assert not r.ok
    assert r.detail == ("schedule[1] did not say 'Multiple primaries': LvmError: Cannot access "
                        "VG vg due to failed lock.")


SCHEDULED = (ScheduledCommand(0, "step-0", "cluster stop on bob"),
             ScheduledCommand(1, "step-1", "lvm lvcreate on alice"),
             ScheduledCommand(3, "step-3", "lvm lvcreate on bob"),
             ScheduledCommand(5, "before", "probe overlay on web1"))


def test_every_scheduled_command_without_a_result_fails_commands_finished() -> None:
    r = commands_finished(RESULTS, SCHEDULED)
    assert not r.ok
    assert r.detail == ("schedule[3] (lvm lvcreate on bob) never finished; schedule[5] (probe "
                        "overlay on web1) never finished")
    assert r.data["unfinished"] == [3, 5]


def test_commands_the_drill_expects_waiting_are_not_unfinished() -> None:
    r = commands_finished(RESULTS, SCHEDULED, pending=[3, 5])
    assert r.ok and r.detail == "2 command(s) finished, 2 still waiting as expected"
