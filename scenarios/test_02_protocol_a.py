"""Scenario 2: DRBD protocol A over a 30 ms replication link loses its primary."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drbd_after, drill


@pytest.mark.backends("sim")  # only the simulator can predict which writes were in flight
def test_protocol_a_loses_exactly_the_predicted_acknowledged_writes(run_drill):
    """Protocol A acknowledges once the write is on the local disk and in the TCP send
    buffer, so the writes still on the wire when cmp1 dies are lost although acknowledged.
    The judge demands that the count equals the model's prediction for this seed."""
    report = run_drill(drill("protocol-a-failover"))
    assert_passed(report)
    writes = check(report, "acked_writes")
    lost = writes.data["lost"]
    assert lost > 0, "30 ms of latency at 50 writes/s must leave acknowledged writes in flight"
    assert f"(allowed: {lost})" in writes.detail, writes.detail  # predicted == lost
    assert sum(i.lost_writes for i in report.instances) == lost


@pytest.mark.backends("sim")
def test_the_failed_primary_rejoins_as_resync_target_of_the_new_primary(run_drill):
    """When cmp1 comes back its never-replicated writes are overwritten by the resync from
    cmp2 (the new primary): it rejoins Secondary and UpToDate, every instance still runs."""
    report = run_drill(drill("protocol-a-failover"))
    assert_passed(report)
    assert drbd_after(report, "r0", "cmp1") == ("Secondary", "UpToDate", "Connected")
    assert drbd_after(report, "r0", "cmp2") == ("Primary", "UpToDate", "Connected")
    assert report.faults[0].healed_at is not None, "cmp1 never came back"
