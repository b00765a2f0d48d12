"""tbf: TCP throughput over the VXLAN overlay vs the underlay on a 10 Mbit/s link.

The seed measured the overlay at ~0.91 of the underlay with iperf on ~10 Mbit/s cloud
links. On a tbf-shaped link the ratio is set by the frame arithmetic alone: tbf charges
each frame its whole length, and an overlay frame carries 50 bytes of VXLAN for 50 bytes
less payload (bench/netns_bandwidth.py measures the same on three paths).
"""

from __future__ import annotations

import statistics

from stackdrill.conformance import labs
from stackdrill.conformance.model import Fields, Observed, Situation, relative, within
from stackdrill.faults import RateLimit

RATE_MBIT = 10.0
REPS = 3
SECONDS = 4.0
LIMIT = RateLimit(host="a", network=labs.NETWORK, mbit=RATE_MBIT)


def _fields(underlay: float, overlay: float) -> Fields:
    return {"underlay_mbit_s": Observed(value=round(underlay, 4), unit="Mbit/s"),
            "overlay_mbit_s": Observed(value=round(overlay, 4), unit="Mbit/s"),
            "overlay_to_underlay": Observed(value=round(overlay / underlay, 4))}


def simulate() -> Fields:
    lab = labs.sim_lab()
    lab.inject(LIMIT)
    underlay = lab.underlay.goodput_mbit("a", "b", labs.NETWORK)
    overlay = lab.overlays[labs.OVERLAY].goodput_mbit("a", "b")
    return _fields(underlay, overlay)


def record_netns() -> Fields:
    """iperf3 a -> b, underlay and overlay interleaved so drift hits both alike; medians."""
    from stackdrill.backends.netns.throughput import iperf

    samples: dict[str, list[float]] = {"underlay": [], "overlay": []}
    with labs.netns_lab() as lab:
        targets = {"underlay": labs.ADDRESS["b"],
                   "overlay": lab.overlay.overlays[labs.OVERLAY].host_ips["b"]}
        lab.inject(LIMIT)
        for _ in range(REPS):
            for path, target in targets.items():
                samples[path].append(iperf(lab.names.host_ns("a"), lab.names.host_ns("b"),
                                           target, SECONDS))
    return _fields(statistics.median(samples["underlay"]), statistics.median(samples["overlay"]))


SITUATION = Situation(
    name="tbf-overlay-ratio",
    exercises="iperf3 a->b on a 10 Mbit/s tbf link: VXLAN overlay vs underlay throughput",
    tolerances={"underlay_mbit_s": relative(0.02), "overlay_mbit_s": relative(0.02),
                "overlay_to_underlay": within(0.01)},
    simulate=simulate,
    recorders={"netns": record_netns},
)
