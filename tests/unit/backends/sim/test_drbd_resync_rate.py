"""How fast a bitmap resync runs: DRBD's resync-rate as the SyncTarget applies it, in whole
4 KiB requests per 100 ms tick (drbd-8.4 drbd_worker.c drbd_rs_number_requests, with
c-plan-ahead 0), capped by the TCP goodput of the replication link. Recorded on the guests
(drbd-resync-rate-limit): 8 MiB under resync-rate 1953k took 4.47 s, through a 16 Mbit/s
tbf 4.89 s; the simulator gave 4.19 s for both (the nominal rate, no tick, no headers)."""

from __future__ import annotations

from test_drbd_lab import Lab

from stackdrill.backends.sim.drbd_timing import resync_kib_per_s

BLOCKS = 2048  # 8 MiB of 4 KiB blocks


def _resync_seconds(lab: Lab) -> float:
    lab.res.disconnect("n2")
    lab.run(lab.now + 5.0)
    for block in range(BLOCKS):
        lab.write("n1", block, f"v{block}")
    lab.run(lab.now + 1.0)
    lab.res.connect("n2")
    lab.run(lab.now + 30.0)
    started = lab.events("resync-started")[-1]
    assert started.get("kb") == BLOCKS * 4
    assert lab.st("n2").disk == "UpToDate" and lab.st("n2").out_of_sync_kb == 0
    return float(str(started.get("duration")))


def test_the_rate_is_whole_requests_per_tick() -> None:
    """16 Mbit/s is resync-rate 1953k: 48 requests of 4 KiB per 100 ms, 1920 KiB/s."""
    assert resync_kib_per_s(1953, 1000.0) == 1920.0
    lab = Lab(resync_rate_mbit=16.0)
    assert abs(_resync_seconds(lab) - 8192 / 1920) < 0.01


def test_a_link_limit_caps_the_resync_at_its_tcp_goodput() -> None:
    """A 16 Mbit/s link carries 16 * 1448 / 1514 Mbit/s of TCP payload (sch_tbf charges
    each frame's length, MAC header included): 8 MiB in 4.39 s, not 4.19 s."""
    lab = Lab(bandwidth_mbit=16.0)
    expected = 8192 * 1024 * 8 / (16e6 * 1448 / 1514)
    assert abs(_resync_seconds(lab) - expected) < 0.01
