"""cut one_way: what a one-way cut between two hosts lets through.

The fault's documented meaning: what the first host of a pair sends to the second is
dropped; what the second sends still arrives; no conversation between them survives.
The netns backend realises it as one nftables rule on the sender's `output` hook. Each
direction is counted with one-way UDP datagrams (as for packet_loss), and a TCP connect
is tried both ways: its handshake needs both directions, so it fails either way.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from stackdrill.conformance import labs
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.loss import DATAGRAM_IP_BYTES, DIRECTIONS, datagrams
from stackdrill.faults import Cut

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

COUNT = 20  # datagrams per direction
TCP_PORT = 40001
CONNECT_TIMEOUT_S = 2.0
GRUDGE = Cut(pairs=(("a", "b"),), one_way=True, network=labs.NETWORK)


def _observed(received: dict[str, int], tcp: dict[str, bool]) -> Fields:
    out: Fields = {"sent_per_direction": Observed(value=COUNT, unit="datagrams")}
    out.update({f"underlay_{k}_received": Observed(value=v, unit="datagrams")
                for k, v in sorted(received.items())})
    out.update({f"tcp_{k}_connects": Observed(value=v) for k, v in sorted(tcp.items())})
    return out


def _simulate() -> Fields:
    lab = labs.sim_lab()
    lab.inject(GRUDGE)
    received, tcp = {}, {}
    for src, dst in DIRECTIONS:
        key = f"{src}_to_{dst}"
        received[key] = sum(lab.underlay.send(src, dst, labs.NETWORK, DATAGRAM_IP_BYTES)
                            is not None for _ in range(COUNT))
        tcp[key] = lab.underlay.connected(src, dst, labs.NETWORK)
    return _observed(received, tcp)


def _connects(lab: NetnsLab, src: str, dst: str) -> bool:
    """A TCP handshake src -> dst within the timeout (a listener waits on dst)."""
    from stackdrill.backends.netns import nsops

    server = nsops.socket_in(lab.names.host_ns(dst))
    client = nsops.socket_in(lab.names.host_ns(src))
    try:
        server.bind((labs.ADDRESS[dst], TCP_PORT))
        server.listen(1)
        client.settimeout(CONNECT_TIMEOUT_S)
        with contextlib.suppress(OSError):  # a timeout, or EPERM from the output hook
            client.connect((labs.ADDRESS[dst], TCP_PORT))
            return True
        return False
    finally:
        client.close()
        server.close()


def _record() -> Fields:
    with labs.netns_lab() as lab:
        lab.inject(GRUDGE)
        received, tcp = {}, {}
        for src, dst in DIRECTIONS:
            key = f"{src}_to_{dst}"
            received[key] = datagrams(lab.names.host_ns(src), lab.names.host_ns(dst),
                                       labs.ADDRESS[dst], COUNT)
            tcp[key] = _connects(lab, src, dst)
    return _observed(received, tcp)


ONE_WAY = Situation(
    name="cut-one-way",
    exercises="cut a->b one_way: one-way UDP a->b and b->a, and a TCP connect each way",
    tolerances=dict.fromkeys(
        ("sent_per_direction", "underlay_a_to_b_received", "underlay_b_to_a_received",
         "tcp_a_to_b_connects", "tcp_b_to_a_connects"), EXACT),
    simulate=_simulate, recorders={"netns": _record})
