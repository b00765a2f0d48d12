"""packet_loss: which direction a loss fault on one host's link really drops.

The fault's documented meaning is loss of packets LEAVING the host. The netns backend
realises it with an nftables rule on the host's `output` hook matching the link's
`oifname`: what the host sends is dropped (VXLAN frames included: they are generated
locally), what arrives is not. Each direction is counted with one-way UDP datagrams
(a ping would not tell: its request and its reply go opposite ways), on the underlay
between the hosts and across the overlay between the two instances. The instances
resolve each other's MAC before the fault: ARP needs both directions, and what is
measured here is the data path.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.backends.sim.overlay_plane import Frame
from stackdrill.conformance import labs
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, Tolerance, within
from stackdrill.faults import PacketLoss

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab
    from stackdrill.backends.sim.lab import SimLab

PORT = 40000
PAYLOAD = 64  # bytes of UDP payload
DATAGRAM_IP_BYTES = PAYLOAD + 28
BATCH = 50  # datagrams sent before the receiver drains (its buffer never overflows)
DRAIN_S = 0.3  # quiet time after which a batch is taken as fully arrived
DIRECTIONS = (("a", "b"), ("b", "a"))


def _observed(counts: dict[str, int], sent: int) -> Fields:
    out: Fields = {"sent_per_direction": Observed(value=sent, unit="datagrams")}
    out.update({f"{name}_received": Observed(value=n, unit="datagrams")
                for name, n in sorted(counts.items())})
    return out


# ---------------------------------------------------------------- simulator

def _simulate(probability: float, count: int, overlay: bool, host: str = "a") -> Fields:
    lab = labs.sim_lab()
    lab.inject(PacketLoss(host=host, network=labs.NETWORK, probability=probability))
    counts: dict[str, int] = {}
    for src, dst in DIRECTIONS:
        counts[f"underlay_{src}_to_{dst}"] = sum(
            lab.underlay.send(src, dst, labs.NETWORK, DATAGRAM_IP_BYTES) is not None
            for _ in range(count))
        if overlay:
            counts[f"overlay_{src}_to_{dst}"] = labs.sim_run(
                lab, _overlay_datagrams(lab, labs.INSTANCE[src], labs.INSTANCE[dst], count))
    return _observed(counts, count)


def _overlay_datagrams(lab: SimLab, src: str, dst: str,
                       count: int) -> Generator[simpy.Event, Any, int]:
    overlay = lab.overlays[labs.OVERLAY]
    port, peer = overlay.ports[src], overlay.ports[dst]
    got = 0
    for _ in range(count):
        delivery = yield from overlay.plane.transmit(
            port, Frame(port.mac, peer.mac, DATAGRAM_IP_BYTES, df=False, what="udp"))
        got += dst in delivery.ports
    return got


# ---------------------------------------------------------------- real kernel

def _record(probability: float, count: int, overlay: bool, host: str = "a") -> Fields:
    with labs.netns_lab() as lab:
        for src, dst in DIRECTIONS:  # both ARP caches filled while nothing is lost
            _resolve(lab, labs.INSTANCE[src], labs.INSTANCE[dst])
        lab.inject(PacketLoss(host=host, network=labs.NETWORK, probability=probability))
        counts: dict[str, int] = {}
        for src, dst in DIRECTIONS:
            counts[f"underlay_{src}_to_{dst}"] = datagrams(
                lab.names.host_ns(src), lab.names.host_ns(dst), labs.ADDRESS[dst], count)
            if overlay:
                isrc, idst = labs.INSTANCE[src], labs.INSTANCE[dst]
                counts[f"overlay_{src}_to_{dst}"] = datagrams(
                    lab.names.instance_ns(isrc), lab.names.instance_ns(idst),
                    labs.INSTANCE_IP[idst], count)
    return _observed(counts, count)


def _resolve(lab: NetnsLab, src: str, dst: str) -> None:
    from stackdrill.backends.netns import nsops

    nsops.run(lab.names.instance_ns(src),
              ["ping", "-n", "-q", "-c", "1", "-W", "2", labs.INSTANCE_IP[dst]], timeout=10)


def datagrams(src_ns: str, dst_ns: str, dst_ip: str, count: int) -> int:
    """Send `count` datagrams src -> dst in batches; how many arrived."""
    from stackdrill.backends.netns import nsops

    rx = nsops.socket_in(dst_ns, kind=socket.SOCK_DGRAM)
    tx = nsops.socket_in(src_ns, kind=socket.SOCK_DGRAM)
    try:
        rx.bind((dst_ip, PORT))
        rx.settimeout(DRAIN_S)
        got = 0
        for start in range(0, count, BATCH):
            for _ in range(min(BATCH, count - start)):
                with contextlib.suppress(PermissionError):  # nftables' drop in the output
                    tx.sendto(b"x" * PAYLOAD, (dst_ip, PORT))  # hook: EPERM to the sender
            got += _drain(rx)
        return got
    finally:
        rx.close()
        tx.close()


def _drain(rx: socket.socket) -> int:
    got = 0
    for _ in range(BATCH + 1):  # at most one batch is waiting, then the timeout
        try:
            rx.recv(PAYLOAD + 1)
        except TimeoutError:
            break
        got += 1
    return got


# ---------------------------------------------------------------- situations

def _situation(name: str, exercises: str, probability: float, count: int, overlay: bool,
               lossy: Tolerance, host: str = "a") -> Situation:
    """Loss on `host`'s link: what it sends is lossy, what it receives exact."""
    paths = ("underlay", "overlay") if overlay else ("underlay",)
    tolerances: dict[str, Tolerance] = {"sent_per_direction": EXACT}
    for path in paths:
        for src, dst in DIRECTIONS:
            tolerances[f"{path}_{src}_to_{dst}_received"] = lossy if src == host else EXACT
    return Situation(
        name=name, exercises=exercises, tolerances=tolerances,
        simulate=lambda: _simulate(probability, count, overlay, host),
        recorders={"netns": lambda: _record(probability, count, overlay, host)})


WHOLE = _situation(
    "packet-loss-whole",
    "packet_loss 1.0 on a's link: one-way UDP a->b and b->a, underlay and overlay",
    1.0, 100, overlay=True, lossy=EXACT)
# 500 draws at p = 0.3: 150 lost on average, standard deviation ~10; 5 of them allowed
PARTIAL = _situation(
    "packet-loss-partial",
    "packet_loss 0.3 on a's link: one-way UDP a->b and b->a on the underlay",
    0.3, 500, overlay=False, lossy=within(50))
