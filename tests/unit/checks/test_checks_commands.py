"""Operator commands a drill expects to succeed or to be refused, as their tools answered."""

from __future__ import annotations

from stackdrill.api import CommandResult
from stackdrill.checks.commands import command_outcomes

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
