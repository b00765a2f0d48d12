"""`ping -i INTERVAL` inside an instance, through its ARP cache, and a watch on that cache.

A train of echo requests at a fixed interval, each handed to the instance's neighbour
table (neighbour.py) like the kernel's neigh_resolve_output: sent at once with a valid
entry, queued while INCOMPLETE and sent or dropped when it resolves or fails. As iputils
ping does, the request after a reply carries MSG_CONFIRM, which keeps the entry
REACHABLE while replies come back. The answering instance replies directly (its own
cache for the sender is not modelled: it stays valid across an outage of the sender's
path, and a request from the sender refreshes it).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.backends.sim.neighbour import NeighState
from stackdrill.backends.sim.overlay_plane import Frame
from stackdrill.overlay.model import ICMP_ECHO_OVERHEAD

if TYPE_CHECKING:
    from stackdrill.backends.sim.overlay import OverlaySim

ECHO_BYTES = 56 + ICMP_ECHO_OVERHEAD


@dataclass
class PingTrainResult:
    """ping's summary: transmitted, received, and when each reply arrived (lab time)."""

    transmitted: int = 0
    received: int = 0
    unreachable: int = 0  # dropped by a FAILED neighbour entry ('Destination Host Unreachable')
    replies: list[float] = field(default_factory=list)
    confirm: bool = False  # the next request carries MSG_CONFIRM


def ping_train(overlay: OverlaySim, src: str, dst_ip: str, interval_s: float,
               duration_s: float) -> Generator[simpy.Event, Any, PingTrainResult]:
    """Echo requests every `interval_s` for `duration_s`; the summary when it is stopped."""
    kernel = overlay.kernel
    table = overlay.neighbours(src)
    result = PingTrainResult()
    for _ in range(int(duration_s / interval_s + 1e-9)):
        result.transmitted += 1
        if result.confirm:
            table.confirm(dst_ip)
            result.confirm = False
        table.output(dst_ip, lambda mac: _echo(overlay, src, dst_ip, mac, result))
        yield kernel.env.timeout(interval_s)
    return result


def _echo(overlay: OverlaySim, src: str, dst_ip: str, mac: str | None,
          result: PingTrainResult) -> None:
    if mac is None:
        result.unreachable += 1
        return

    def run() -> Generator[simpy.Event, Any, None]:
        port = overlay.ports[src]
        request = yield from overlay.plane.transmit(port, Frame(port.mac, mac, ECHO_BYTES,
                                                                False, "echo"))
        target = next((overlay.ports[n] for n in request.ports
                       if n in overlay.ports and overlay.ports[n].ip == dst_ip
                       and overlay.ports[n].mac == mac), None)
        if target is None:
            return
        reply = yield from overlay.plane.transmit(target, Frame(mac, port.mac, ECHO_BYTES,
                                                                False, "echo-reply"))
        if src in reply.ports:
            result.received += 1
            result.replies.append(overlay.kernel.now)
            result.confirm = True

    overlay.kernel.env.process(run())


@dataclass
class NeighWatch:
    """`ip neigh show IP` polled at a fixed interval: when each state was first seen."""

    seen: list[tuple[float, NeighState]] = field(default_factory=list)

    def first_in(self, states: Iterable[str]) -> float | None:
        wanted = set(states)
        return next((t for t, s in self.seen if s in wanted), None)

    @property
    def last(self) -> str:
        return str(self.seen[-1][1]) if self.seen else str(NeighState.NONE)


def watch_neighbour(overlay: OverlaySim, port: str, ip: str, start: float, end: float,
                    poll_s: float) -> NeighWatch:
    """Poll the port's entry for `ip` from `start` until just before `end` (lab times)."""
    watch = NeighWatch()
    table = overlay.neighbours(port)
    polls = int((end - start) / poll_s + 1e-9)
    times = [start + i * poll_s for i in range(polls)] + [end - 1e-6]
    for at in times:
        overlay.kernel.call_later(at - overlay.kernel.now,
                                  lambda: watch.seen.append((overlay.kernel.now,
                                                             table.state(ip))))
    return watch
