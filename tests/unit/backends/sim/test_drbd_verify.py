"""drbdadm verify, invalidate and invalidate-remote on the simulated resource, as
drbd-8.4's drbd_nl.c and drbd_state.c decide them (recorded on guests:
drbd-verify-corrupt-secondary, drbd-invalidate)."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.backends.sim.drbd import DrbdError

CORRUPT = (300, 4000, 9000)  # blocks of the 1 GiB device, past its first MiB


def _corrupted(**kw: object) -> Lab:
    lab = Lab(verify_alg="md5", **kw)  # type: ignore[arg-type]
    for addr in CORRUPT:
        lab.write("n1", addr, f"good-{addr}")
    lab.run(1.0)
    lab.disks["n2"].corrupt(list(CORRUPT))
    return lab


def test_verify_needs_a_verify_alg() -> None:
    lab = Lab()
    with pytest.raises(DrbdError, match=r"\(-14\) Need a verify algorithm to start online"):
        lab.res.verify("n1")
    assert lab.st("n1").connection == "Connected"


def test_verify_marks_exactly_the_differing_blocks_on_both_nodes_and_repairs_nothing() -> None:
    lab = _corrupted()
    lab.res.verify("n1")
    assert (lab.st("n1").connection, lab.st("n2").connection) == ("VerifyS", "VerifyT")
    lab.run(lab.now + 60.0)
    for host in ("n1", "n2"):
        assert lab.st(host).connection == "Connected"
        assert lab.st(host).out_of_sync_kb == 4 * len(CORRUPT)
    assert lab.disks["n2"].peek(300) != "good-300"  # verify copies nothing


def test_verify_is_refused_during_a_resync_and_without_a_connection() -> None:
    """A second verify while verifying is SS_NOTHING_TO_DO (drbdadm succeeds, nothing
    restarts); during a resync it is SS_RESYNC_RUNNING."""
    lab = _corrupted(bandwidth_mbit=10.0)
    lab.res.verify("n1")
    lab.res.verify("n1")
    lab.run(lab.now + 1200.0)
    assert lab.st("n1").out_of_sync_kb == 4 * len(CORRUPT)
    lab.res.invalidate("n2")
    with pytest.raises(DrbdError, match=r"\(-8\) Can not start OV/resync since it is already"):
        lab.res.verify("n1")
    lab.run(lab.now + 1200.0)
    lab.res.disconnect("n2")
    with pytest.raises(DrbdError, match=r"\(-15\) Need a connection to start verify"):
        lab.res.verify("n1")


def test_invalidate_on_the_secondary_resyncs_it_fully_from_the_primary() -> None:
    lab = _corrupted()
    lab.res.invalidate("n2")
    assert lab.st("n2").connection == "SyncTarget" and lab.st("n2").disk == "Inconsistent"
    lab.run(lab.now + 120.0)
    assert lab.st("n2").disk == "UpToDate"
    assert [lab.disks["n2"].peek(a) for a in CORRUPT] == [f"good-{a}" for a in CORRUPT]


def test_invalidate_remote_pushes_a_full_resync_to_the_peer() -> None:
    lab = _corrupted()
    lab.res.invalidate_remote("n1")
    assert lab.st("n1").connection == "SyncSource" and lab.st("n2").disk == "Inconsistent"
    lab.run(lab.now + 120.0)
    assert [lab.disks["n2"].peek(a) for a in CORRUPT] == [f"good-{a}" for a in CORRUPT]


def test_invalidate_without_a_peer_is_refused_on_a_primary_and_marks_a_standalone_secondary(
        ) -> None:
    lab = _corrupted()
    lab.res.disconnect("n2")
    with pytest.raises(DrbdError, match=r"\(-15\) Need a connection to start verify or resync"):
        lab.res.invalidate("n1")
    lab.res.invalidate("n2")
    assert lab.st("n2").disk == "Inconsistent" and lab.st("n2").connection == "StandAlone"
    lab.res.connect("n2")
    lab.run(lab.now + 120.0)
    assert lab.st("n2").disk == "UpToDate"
    assert [lab.disks["n2"].peek(a) for a in CORRUPT] == [f"good-{a}" for a in CORRUPT]
