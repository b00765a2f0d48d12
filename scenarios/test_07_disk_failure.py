"""Scenario 7: the backing disk under the DRBD primary fails and is replaced."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, assert_sim_agrees, check, drbd_after, drill


@pytest.mark.backends("sim", "libvirt")
@pytest.mark.parametrize(("name", "primary", "peer"), [
    ("disk-failure", "sto1", "sto2"),
    pytest.param("vm-disk-failure", "cmp1", "cmp2", marks=pytest.mark.vm),
])
def test_diskless_primary_serves_from_its_peer_then_resyncs_to_uptodate(
        run_drill, name, primary, peer):
    """on-io-error detach: the primary goes Diskless and reads/writes through its peer, so
    no guest sees an I/O error; after the disk is replaced a full resync makes it UpToDate
    again. vm-disk-failure is the same on the two-host lab real guests run (marked vm)."""
    report = run_drill(drill(name))
    assert_passed(report)
    assert check(report, "no_io_errors").data["io_errors"] == 0
    assert check(report, "acked_writes").data["lost"] == 0
    assert drbd_after(report, "r0", primary) == ("Primary", "UpToDate", "Connected")
    assert drbd_after(report, "r0", peer)[1:] == ("UpToDate", "Connected")
    assert_sim_agrees(report, run_drill)
    assert all(i.host_after == i.host_before for i in report.instances), "a guest moved"
