"""Replication protocols A/B/C: acknowledgement points and what a Primary crash loses."""

from __future__ import annotations

import pytest
from test_drbd_lab import Lab

from stackdrill.topology.model import Protocol


def _ack_time(protocol: Protocol) -> tuple[float, bool]:
    lab = Lab(protocol=protocol, bandwidth_mbit=100.0, latency_ms=2.0)
    start = lab.now
    ev = lab.write("n1", 1, "x")
    on_peer_at_ack: list[bool] = []
    ev.callbacks.append(lambda _e: on_peer_at_ack.append(
        lab.res.device("n2").peek(1) == "x"))
    lab.settle(ev)
    assert ev.ok
    return lab.now - start, on_peer_at_ack[0]


def test_ack_points_a_before_b_before_c() -> None:
    """UG 8.4, 2.3 Replication modes: A completes when the local disk write is done and the
    packet is in the TCP send buffer; B when the peer has received it; C when the peer's
    disk write is done. So ack latency A < B < C, and only B/C ack after the peer has it."""
    a, a_peer = _ack_time(Protocol.A)
    b, b_peer = _ack_time(Protocol.B)
    c, c_peer = _ack_time(Protocol.C)
    disk = 0.0005
    assert a == pytest.approx(disk)  # local disk only
    assert b > a and b >= 2 * 0.002  # at least one round trip
    assert c == pytest.approx(b + disk)  # plus the peer's disk write
    assert not a_peer and b_peer and c_peer


def _crash_primary_mid_stream(protocol: Protocol) -> Lab:
    # a slow link (10 Mbit/s: 3.3 ms per 4 KiB) fed every 1 ms: data piles up in flight
    lab = Lab(protocol=protocol, bandwidth_mbit=10.0, latency_ms=5.0)
    lab.workload("n1", 400, 0.001)
    lab.k.call_later(0.25, lab.hosts["n1"].crash)
    lab.run(20.0)
    return lab


def test_protocol_a_primary_crash_loses_acked_writes_in_flight() -> None:
    """UG 2.3: with protocol A "in the event of forced fail-over, data loss may occur"
    — the writes still in the TCP send buffer were acked but never reached the peer."""
    lab = _crash_primary_mid_stream(Protocol.A)
    lost = lab.lost_on("n2", "n1")
    dropped = {d.addr for d in lab.res.dropped_writes()}
    assert lost, "protocol A must lose acknowledged in-flight writes here"
    assert set(lost) == dropped  # the model reports exactly the writes the peer lacks
    assert lab.st("n2").connection == "WFConnection"


@pytest.mark.parametrize("protocol", [Protocol.B, Protocol.C])
def test_protocols_b_and_c_lose_nothing_on_a_single_node_crash(protocol: Protocol) -> None:
    """UG 2.3: B ("memory synchronous") loses no data on the failure of one node; C
    ("synchronous") guarantees no loss: every acked write is on the surviving peer."""
    lab = _crash_primary_mid_stream(protocol)
    assert lab.acked["n1"], "some writes must have been acknowledged before the crash"
    assert lab.lost_on("n2", "n1") == []
    assert lab.res.dropped_writes() == []


def test_lost_packets_are_retransmitted_not_lost() -> None:
    """DRBD replicates over TCP (UG 2.4): a lost segment is retransmitted, costing time
    only; every acked write still reaches the peer."""
    lab = Lab(protocol=Protocol.C)
    lab.net.set_loss("n2", "repl", 0.3)
    lab.workload("n1", 100, 0.01)
    lab.run(30.0)
    assert len(lab.acked["n1"]) == 100
    assert lab.lost_on("n2", "n1") == []
    assert lab.st("n1").connection == "Connected"


def test_bandwidth_limits_replication_throughput() -> None:
    """Replication shares the link (UG 15 Optimizing DRBD throughput): with protocol C a
    burst of writes cannot complete faster than the link can carry them."""
    lab = Lab(protocol=Protocol.C, bandwidth_mbit=10.0, latency_ms=0.1)
    events = [lab.write("n1", i, i) for i in range(100)]
    lab.settle(events[-1])
    wire = 100 * (4096 + 64) * 8 / 10e6
    assert lab.now >= wire
    assert all(e.ok for e in events)


def test_a_replicated_write_costs_a_handful_of_simulation_events() -> None:
    """Drill budget: a replicated write costs a handful of SimPy events (5 today), so
    20 000 writes simulate in well under the time a 200-instance drill may take. Counted,
    not timed: a wall-clock limit failed on a busy runner (bench/sim_large.py times it)."""
    lab = Lab(protocol=Protocol.C)
    lab.workload("n1", 20000, 0.0005)
    env = lab.k.env
    step, steps = env.step, 0

    def counted_step() -> None:
        nonlocal steps
        steps += 1
        step()

    env.step = counted_step  # type: ignore[method-assign]
    lab.run(15.0)
    assert len(lab.acked["n1"]) == 20000
    assert steps <= 8 * 20000
