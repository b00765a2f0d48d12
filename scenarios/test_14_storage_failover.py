"""Scenario 14: the DRBD storage primary dies; the surviving replica takes over its volumes."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drbd_after, drill


@pytest.mark.backends("sim")
def test_every_guest_writes_again_through_the_promoted_secondary(run_drill):
    """Pacemaker's job: fence sto1, promote sto2 (protocol C: it has every acknowledged
    write) and re-export the volumes; each guest reconnects on its own host, exactly once."""
    report = run_drill(drill("storage-primary-loss"))
    assert_passed(report)
    assert check(report, "acked_writes").data["lost"] == 0
    assert report.state_after["power"]["sto1"] == "off"
    assert drbd_after(report, "r0", "sto2")[:2] == ("Primary", "UpToDate")
    fewest = min(i.acked_writes for i in report.instances)
    for inst in report.instances:
        assert inst.state == "recovered", f"{inst.name}: {inst.state} {inst.reason}"
        assert inst.host_after == inst.host_before, f"{inst.name} moved to {inst.host_after}"
    # writing until the end, not just up to the crash at t=60 (one write per 2 s)
    assert fewest > 60 / 2 + 100, f"guests stopped writing after the failover ({fewest} acked)"
