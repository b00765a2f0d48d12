"""The data-path situations read the resync and the disk states from the kernel log DRBD
8.4.11 wrote (lines as a guest printed them), the way an operator reads them."""

from __future__ import annotations

import re

from stackdrill.conformance.situations.drbd_data_common import disk_states, vm_resync

LOG = """\
[   25.472737] drbd r0: conn( WFConnection -> WFReportParams )
[   25.504842] block drbd0: conn( WFReportParams -> WFBitMapS ) pdsk( Outdated -> Consistent )
[   25.884635] block drbd0: conn( WFBitMapS -> SyncSource ) pdsk( Consistent -> Inconsistent )
[   25.884739] block drbd0: Began resync as SyncSource (will sync 2048 KB [512 bits set]).
[   26.925615] block drbd0: Resync done (total 1 sec; paused 0 sec; 2048 K/sec)
[   26.925750] block drbd0: conn( SyncSource -> Connected ) pdsk( Inconsistent -> UpToDate )
"""
_LINE = re.compile(r"\[\s*(\d+\.\d+)\]\s*(.*)")


def _lines(text: str) -> list[tuple[float, str]]:
    return [(float(m.group(1)), m.group(2)) for m in map(_LINE.match, text.splitlines()) if m]


def test_the_resync_is_read_from_began_resync_to_resync_done() -> None:
    seen = {k: v.value for k, v in vm_resync(_lines(LOG), "a").items()}
    assert seen == {"resync_source": "a", "resync_kb": 2048, "resync_s": 1.041}
    target = LOG.replace("SyncSource (will", "SyncTarget (will")
    assert vm_resync(_lines(target), "a")["resync_source"].value == "b"
    assert vm_resync([], "a")["resync_kb"].value is None


def test_disk_states_are_the_states_entered_in_order() -> None:
    log = ("[ 1.0] block drbd0: disk( UpToDate -> Failed )\n"
           "[ 1.1] block drbd0: disk( Failed -> Diskless ) pdsk( UpToDate -> DUnknown )\n")
    assert disk_states(_lines(log)) == "Failed > Diskless"
    assert disk_states(_lines(LOG)) == ""
