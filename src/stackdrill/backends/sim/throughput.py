"""The throughput probe on the simulator: what iperf3 would report from one instance to
another across the overlay, and between their hosts over the underlay, from the link
model (Underlay.goodput_mbit: the bottleneck rate times the payload share of each frame;
recorded on the kernel in tests/conformance/recordings/tbf-overlay-ratio.json).

iperf3 needs a working TCP path: a SYN (a small packet) and full-size segments. Where the
small ping gets no answer, the stream cannot open and carries nothing. Where small
packets pass but full-size frames are refused or lost (a frag-needed answer, a path-MTU
blackhole), what TCP then does (retransmits, a lowered MSS) is not modelled: a drill that
measures throughput while it loses or refuses frames is refused on the simulator up front
(drill/support.py), and a probe that meets such a path anyway gives no figure, so a
throughput check over it does not run rather than pass or fail on a guess.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.api import CommandResult, ThroughputProbe
from stackdrill.api.commands import ThroughputCommand
from stackdrill.overlay.model import ICMP_ECHO_OVERHEAD

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab

NOT_MODELLED = "not modelled on the simulator: "


def throughput(lab: SimLab, command: ThroughputCommand
               ) -> Generator[simpy.Event, Any, CommandResult]:
    """Both iperf3 runs, `seconds` each, as one result (see the module docstring)."""
    target = lab.topology.instance(command.dst)
    overlay = lab.overlays[target.overlay or ""]
    src_host, dst_host = overlay.ports[command.src].host, overlay.ports[command.dst].host
    if src_host == dst_host:
        return CommandResult(ok=False, detail=NOT_MODELLED + f"{command.src} and "
                             f"{command.dst} share host {src_host}: no underlay between them")
    small = yield overlay.ping(command.src, target.ip or "", size=56)
    full = yield overlay.ping(command.src, target.ip or "",
                              size=overlay.spec.mtu - ICMP_ECHO_OVERHEAD, df=True)
    started = lab.kernel.now
    yield lab.kernel.env.timeout(2 * command.seconds)
    network = overlay.spec.network
    under = (lab.underlay.goodput_mbit(src_host, dst_host, network)
             if lab.underlay.connected(src_host, dst_host, network) else 0.0)
    if small.ok and not full.ok:
        return CommandResult(ok=False, detail=NOT_MODELLED + "TCP over a path whose "
                             f"full-size frames do not pass ({full.reason})")
    over = overlay.goodput_mbit(src_host, dst_host) if small.ok else 0.0
    found = ThroughputProbe(src=command.src, dst=command.dst, src_host=src_host,
                            dst_host=dst_host, overlay_mbit=round(over, 3),
                            underlay_mbit=round(under, 3), at=started)
    return CommandResult(ok=over > 0 and under > 0, throughput=found,
                         detail=f"overlay {over:.3g} Mbit/s"
                                f"{'' if small.ok else ' (' + small.reason + ')'}; underlay "
                                f"{src_host}->{dst_host} {under:.3g} Mbit/s")
