"""Scenario 10: a second compute host dies while the first recovery runs."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drill, instance


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.vm_peer  # the whole nova-drbd lab on 6 guests, a 700 s drill: ~16 min, nightly
def test_what_cannot_be_placed_is_reported_unrecoverable_with_its_reason(run_drill):
    """With cmp1 and cmp2 dead only cmp3 is left; anti-affinity forbids two web or two db
    guests on it, so web2 and db1 must be reported unrecoverable, naming the rule, while
    everything else runs exactly once on cmp3 with no acknowledged write lost."""
    report = run_drill(drill("cascade"))
    assert_passed(report)
    for name in ("web2", "db1"):
        inst = instance(report, name)
        assert inst.state == "unrecoverable" and inst.host_after is None
        assert "anti-affinity" in inst.reason, inst.reason
    for name in ("web1", "app1", "app2"):
        assert instance(report, name).host_after == "cmp3"
    assert check(report, "acked_writes").data["lost"] == 0
    assert_sim_agrees(report, run_drill)
