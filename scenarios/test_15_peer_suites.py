"""Situations the field's own suites rehearse (drbd9-tests, lvm2's test suite, Pacemaker's
CTS, Jepsen's nemeses), as drills; `lab/coverage.yaml` maps each peer test to the
scenario here or elsewhere that says it, and `stackdrill coverage` prints the table.

Each scenario asserts what the peer test asserts, not only that the drill ran."""

from __future__ import annotations

from scenario_helpers import assert_passed, check, drill, from_host


def test_a_paused_host_that_cannot_be_fenced_keeps_its_instances_and_nothing_runs_twice(
        run_drill):
    """Jepsen's pause (SIGSTOP), as a whole host: cmp1's kernel freezes while its power
    controller is unreachable. Evacuating without a fence could run its guests twice, so
    the engine must refuse, say why, and leave them where they are."""
    report = run_drill(drill("unfenceable-host"))
    assert_passed(report)
    stuck = from_host(report, "cmp1")
    assert stuck, "nothing ran on cmp1: the drill would prove nothing"
    assert all(i.host_after in ("cmp1", None) for i in stuck), \
        [(i.name, i.host_after) for i in stuck]
    assert "cannot be fenced" in check(report, "blocked").detail
