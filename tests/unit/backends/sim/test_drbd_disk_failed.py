"""A disk leaving DRBD passes through D_FAILED, as the kernel logs it: an I/O error under
on-io-error detach and `drbdadm detach` alike (drbd-8.4 drbd_state.c after_state_ch, "first
half of local IO error, failure to attach, or administrative detach"; D_DISKLESS follows
once the last local reference is put). The recorded situation drbd-io-error-detach shows
`disk( UpToDate -> Failed )` then `disk( Failed -> Diskless )` on the guests."""

from __future__ import annotations

from test_drbd_lab import Lab

from stackdrill.api import DrbdStateChanged


def _disk_changes(lab: Lab, host: str) -> list[str]:
    return [t.event.disk for t in lab.k.tracer.events()
            if isinstance(t.event, DrbdStateChanged) and t.event.node == host
            and t.event.disk is not None]


def test_an_io_error_goes_failed_then_diskless_and_the_primary_keeps_serving() -> None:
    lab = Lab()
    lab.disks["n1"].fail()
    assert lab.settle(lab.write("n1", 5, "via-peer")).ok
    assert _disk_changes(lab, "n1")[-2:] == ["Failed", "Diskless"]
    assert lab.st("n1").disk == "Diskless" and lab.st("n1").peer_disk == "UpToDate"
    assert lab.res.device("n1").peek(5) == "via-peer"


def test_an_administrative_detach_also_passes_through_failed() -> None:
    lab = Lab()
    lab.res.detach("n2")
    assert _disk_changes(lab, "n2")[-2:] == ["Failed", "Diskless"]
    assert lab.st("n2").disk == "Diskless"
