"""Scenario 7: the backing disk under the DRBD primary fails and is replaced."""

from __future__ import annotations

import pytest
from scenario_helpers import assert_passed, check, drbd_after, drill


@pytest.mark.backends("sim", "libvirt")
def test_diskless_primary_serves_from_its_peer_then_resyncs_to_uptodate(run_drill):
    """on-io-error detach: sto1 goes Diskless and reads/writes through sto2, so no guest
    sees an I/O error; after the disk is replaced a full resync makes it UpToDate again."""
    report = run_drill(drill("disk-failure"))
    assert_passed(report)
    assert check(report, "no_io_errors").data["io_errors"] == 0
    assert check(report, "acked_writes").data["lost"] == 0
    assert drbd_after(report, "r0", "sto1") == ("Primary", "UpToDate", "Connected")
    assert drbd_after(report, "r0", "sto2")[1:] == ("UpToDate", "Connected")
    assert all(i.host_after == i.host_before for i in report.instances), "a guest moved"
