"""When each side notices a dead peer, from the resource's net options (drbd_timing)."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.api import DrbdStateChanged
from stackdrill.backends.sim.drbd_detect import PING_LOST, REQUEST_LOST
from stackdrill.topology import DrbdNetOptions
from stackdrill.topology.model import Protocol


def _lost_at(lab: Lab, host: str, until: float, step: float = 0.05) -> float:
    """First time `host` shows WFConnection (bounded scan)."""
    t = lab.now
    while t < until:
        t += step
        lab.run(t)
        if lab.st(host).connection == "WFConnection":
            return t
    return float("inf")


def _cut(lab: Lab, at: float) -> None:
    lab.k.call_later(at - lab.now, lambda: lab.net.set_link("n2", "repl", False))


def test_idle_link_is_noticed_by_the_next_ping_plus_ping_timeout() -> None:
    """drbd_ack_receiver: idle, the loss shows within ping-int + ping-timeout of the cut
    (not a fixed 6 s), and different seeds put the cut at different points of the cycle."""
    seen = []
    for seed in range(6):
        lab = Lab(seed=seed)
        _cut(lab, 30.0)
        lab.run(30.0)
        seen.append(_lost_at(lab, "n1", 60.0) - 30.0)
    assert all(0.5 < d <= 10.5 + 0.06 for d in seen), seen
    assert max(seen) - min(seen) > 1.0  # seeded phase, not one constant


def test_busy_primary_notices_one_ping_int_after_its_last_ack() -> None:
    """Protocol C writes keep acks coming: the Primary's receive restarts at each ack, so it
    pings ping-int after the last one and gives up ping-timeout later (~10.5 s)."""
    lab = Lab(protocol=Protocol.C)
    lab.workload("n1", 10_000, 0.01)
    _cut(lab, 30.0)
    lab.run(30.0)
    assert _lost_at(lab, "n1", 60.0) - 30.0 == pytest.approx(10.5, abs=0.1)


def test_receiving_side_notices_later_than_the_sending_side() -> None:
    """A side that was receiving data only restarts its timed-out receive (data is "good
    enough: peer is still alive") and pings one round later: the two sides differ."""
    lab = Lab(protocol=Protocol.C)
    lab.workload("n1", 10_000, 0.01)
    _cut(lab, 30.0)
    lab.run(30.0)
    primary = _lost_at(lab, "n1", 60.0)
    assert lab.st("n2").connection == "Connected"  # its own clock still runs
    secondary = _lost_at(lab, "n2", 80.0)
    assert secondary > primary + 1.0
    assert secondary - 30.0 <= 20.5 + 0.1


def test_net_options_change_detection() -> None:
    """ping-int 2 and ping-timeout 10 (1 s): a busy Primary gives up 3 s after the cut;
    timeout 10 (1 s) x ko-count 1 lets the request timer win (~1 s) instead."""
    fast_ping = Lab(protocol=Protocol.C, net=DrbdNetOptions(ping_int=2, ping_timeout=10))
    fast_ping.workload("n1", 10_000, 0.01)
    _cut(fast_ping, 30.0)
    fast_ping.run(30.0)
    assert _lost_at(fast_ping, "n1", 60.0) - 30.0 == pytest.approx(3.0, abs=0.1)
    short_ent = Lab(protocol=Protocol.C, net=DrbdNetOptions(timeout=10, ko_count=1))
    short_ent.workload("n1", 10_000, 0.01)
    _cut(short_ent, 30.0)
    short_ent.run(30.0)
    assert _lost_at(short_ent, "n1", 60.0) - 30.0 == pytest.approx(1.0, abs=0.1)


def test_power_cut_peer_is_noticed_only_by_the_survivor_by_its_own_clock() -> None:
    """A powered-off Secondary sends no RST: a busy Primary notices as for a link cut, a
    ping-int after its last ack plus ping-timeout; the dead side has no clock at all."""
    lab = Lab(protocol=Protocol.C)
    lab.workload("n1", 10_000, 0.01)
    lab.k.call_later(30.0, lab.hosts["n2"].crash)
    lab.run(30.0)
    assert _lost_at(lab, "n1", 60.0) - 30.0 == pytest.approx(10.5, abs=0.1)
    assert lab.st("n2").connection == "Unconfigured"


def _both_given_up(lab: Lab) -> float:
    """Cut at 1 s; run until both sides show WFConnection; when the later one gave up."""
    _cut(lab, 1.0)
    _lost_at(lab, "n1", 60.0)
    _lost_at(lab, "n2", 60.0)
    assert lab.st("n1").connection == lab.st("n2").connection == "WFConnection"
    return max(lab.res.waiting_since.values())


def _reconnect_wait(lab: Lab, heal: float) -> float:
    lab.k.call_later(heal - lab.now, lambda: lab.net.set_link("n2", "repl", True))
    lab.run(heal)
    t = heal
    while lab.st("n1").connection == "WFConnection" and t < heal + 300.0:
        t += 0.05
        lab.run(t)
    return t - heal


def test_heal_during_a_blocked_connect_attempt_connects_at_its_next_syn() -> None:
    """drbd_try_connect blocks connect-int on a dead link while TCP retransmits its SYN
    (1, 3, 7 s): a heal 2 s into the attempt connects at the 3 s SYN, not a whole
    connect-int after the heal."""
    lab = Lab(net=DrbdNetOptions(connect_int=30))
    last_loss = _both_given_up(lab)
    assert _reconnect_wait(lab, last_loss + 2.0) <= 1.0 + 0.1


@pytest.mark.parametrize("connect_int", [5, 30])
def test_connect_int_governs_the_reconnect_after_a_heal(connect_int: int) -> None:
    """conn_connect: after both sides gave up, a heal is followed by the next SYN of either
    side's rounds (attempt blocked connect-int, listen connect-int +- 1/7), never at once
    when the heal falls in both sides' listen; a longer connect-int waits longer."""
    lab = Lab(net=DrbdNetOptions(connect_int=connect_int))
    _both_given_up(lab)
    waited = _reconnect_wait(lab, 100.0)
    assert 0.0 < waited <= 2 * connect_int * 8 / 7 + 0.1


def test_promotion_ping_waits_the_resources_ping_timeout() -> None:
    """drbd_set_role requests a ping and retries SS_TWO_PRIMARIES (ping_timeo + 1) tenths
    later: with ping-timeout 20 (2 s) a promotion next to a dead, undeclared Primary takes
    2.1 s, not the default's 0.6 s."""
    lab = Lab(net=DrbdNetOptions(ping_timeout=20))
    lab.hosts["n1"].crash()
    lab.run(0.2)
    assert lab.st("n2").connection == "Connected"
    started = lab.now
    assert lab.promote("n2").ok
    assert lab.now - started == pytest.approx(2.1, abs=1e-3)
    assert lab.st("n2").connection == "WFConnection"


def test_a_peer_that_reboots_before_it_is_noticed_resets_the_stale_connection() -> None:
    """A power-cut Secondary that is back before the Primary's clock runs out: the
    Primary's next segment reaches a fresh kernel, which answers RST; the stale connection
    ends then (not a ping-int later) and the returning node connects and resyncs."""
    lab = Lab(protocol=Protocol.C, boot_s=5.0, net=DrbdNetOptions(ping_int=60))
    lab.workload("n1", 10_000, 0.05)
    lab.k.call_later(10.0, lab.hosts["n2"].crash)
    lab.k.call_later(10.0, lab.hosts["n2"].power_on)
    lab.run(14.9)
    assert lab.st("n1").connection == "Connected"  # its clock: ~70 s after the last ack
    lab.run(17.0)
    assert lab.st("n1").connection in ("Connected", "SyncSource")
    assert lab.st("n2").running and lab.st("n2").connection in ("Connected", "SyncTarget")
    lost = [line for line in lab.k.tracer.lines() if "connection-lost" in line]
    assert len(lost) == 1 and "connection reset by peer" in lost[0]


def test_a_busy_sides_acks_restart_its_ping_wait_whatever_the_idle_phase() -> None:
    """drbd_ack_receiver: every meta packet restarts the ping-int receive. A side that got
    an ack 0.01 s before the cut pings ping-int after that ack and gives up ping-timeout
    later (10.49 s), even when the seeded idle phase falls after the cut; before, an idle
    anchor drawn after the cut hid the acks and the busy side gave up at 7.98 s (the
    real guests: 10.70 s, tests/conformance/recordings/drbd-peer-loss-detection.json)."""
    from stackdrill.backends.sim.drbd_timing import SideClock, ping_detection

    opts = DrbdNetOptions()
    busy = SideClock(meta_rx=0.99, data_rx=float("-inf"))
    for anchor in (0.5, 3.0, 7.48, 9.9):
        assert ping_detection(busy, anchor, 1.0, opts) == pytest.approx(0.99 + 10.5)
    idle = SideClock(meta_rx=float("-inf"), data_rx=float("-inf"))
    assert 1.0 < ping_detection(idle, 7.48, 1.0, opts) <= 1.0 + 10.5


def _loss_reasons(lab: Lab) -> dict[str, str | None]:
    """Each node's reason for its first connection loss (its state change's `why`)."""
    out: dict[str, str | None] = {}
    for traced in lab.k.tracer.events():
        ev = traced.event
        if (isinstance(ev, DrbdStateChanged) and ev.connection == "WFConnection"
                and ev.node not in out):
            out[ev.node] = dict(ev.details).get("why")  # type: ignore[assignment]
    return out


def test_each_side_reports_its_own_reason_for_the_loss() -> None:
    """timeout 3 s x ko-count 2: the writing Primary's request timer ends its side first
    (drbd_req.c net_timeout_reached, "Remote failed to finish a request ..."); the
    Secondary has no request of its own and ends its side by its ping (drbd_receiver.c
    drbd_asender, "PingAck did not arrive in time"), as the guests log each (recorded
    situation drbd-variant-peer-loss-ko-count)."""
    lab = Lab(protocol=Protocol.C, net=DrbdNetOptions(timeout=30, ko_count=2))
    lab.workload("n1", 10_000, 0.01)
    _cut(lab, 30.0)
    lab.run(60.0)
    assert _loss_reasons(lab) == {"n1": REQUEST_LOST, "n2": PING_LOST}
