"""A drill on the simulator is a pure function of its seed: the same seed replays the same
run (so a failure's seed reproduces it), a different seed explores a different one."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, drill

from stackdrill.drill import load_drill
from stackdrill.drill.runner import execute


@pytest.mark.backends("sim")
def test_same_seed_gives_the_same_trace_and_report_and_another_seed_does_not(run_drill):
    first = run_drill(drill("nova-host-failure"), seed=7)
    again = run_drill(drill("nova-host-failure"), seed=7)
    other = run_drill(drill("nova-host-failure"), seed=8)
    for report in (first, again, other):
        assert_passed(report)
        assert len(report.trace_sha256) == 64
    assert first.trace_sha256 == again.trace_sha256
    assert first.to_json() == again.to_json(), "same seed, different report"
    assert other.trace_sha256 != first.trace_sha256, "the seed does not reach the simulation"


@pytest.mark.backends("sim")
def test_the_printed_command_replays_the_scenario_trace(run_drill):
    """What `stackdrill run lab/drills/<d>.yaml --seed N` runs (the line a failing scenario
    prints) has the scenario's trace hash, whichever xdist worker ran the scenario."""
    report = run_drill(drill("quorum-two-node"), seed=3)
    replay = execute(load_drill(drill("quorum-two-node")), backend="sim", seed=3)
    assert replay.trace_sha256 == report.trace_sha256
