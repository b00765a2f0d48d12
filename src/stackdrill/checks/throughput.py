"""The throughput check: over each iperf3 probe, the overlay carried the share of its
underlay's throughput it should.

VXLAN costs each frame 50 bytes of the same wire, so on a link whose rate is the
bottleneck (a tbf limit, a slow cloud link) a TCP stream over the overlay carries
(MTU-50-52)/(MTU-52) of what one over the underlay does (52: IP and TCP headers with
timestamps): 0.966 at a 1500-byte MTU, 0.965 recorded on the kernel
(tests/conformance/recordings/tbf-overlay-ratio.json). The seed measured ~0.91 on cloud
links. A much lower ratio says the overlay loses or fragments
frames; a ratio far above 1 says the underlay run did not meet the overlay's bottleneck.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.api import CommandResult, ThroughputProbe
from stackdrill.checks.result import CheckResult


def overlay_throughput(commands: Mapping[str, CommandResult], labels: Iterable[str], *,
                       min_ratio: float, max_ratio: float,
                       name: str = "throughput") -> CheckResult:
    """Every probe's overlay/underlay ratio lies in [min_ratio, max_ratio]. A probe that
    never ran, or gave no figure (the backend says why), makes the check not run: a path
    nobody measured is not a path that performs."""
    probes: list[ThroughputProbe] = []
    for label in labels:
        res = commands.get(label)
        if res is None:
            return CheckResult.not_run(name, f"throughput probe {label!r} never ran")
        if res.throughput is None:
            return CheckResult.not_run(
                name, f"throughput probe {label!r} gave no figure: {res.detail or '?'}")
        probes.append(res.throughput)
    problems = []
    shown = []
    for p in probes:
        figures = f"{p.overlay_mbit:.3g}/{p.underlay_mbit:.3g} Mbit/s"
        if p.ratio is None:
            problems.append(f"{p.pair}: the underlay {p.src_host}->{p.dst_host} carried "
                            "nothing to compare with")
            continue
        shown.append(f"{p.pair} {p.ratio:.3f} ({figures})")
        if not min_ratio <= p.ratio <= max_ratio:
            problems.append(f"{p.pair}: overlay/underlay {p.ratio:.3f} ({figures}) outside "
                            f"[{min_ratio:g}, {max_ratio:g}]")
    return CheckResult.of(name, problems, "overlay/underlay " + ", ".join(shown),
                          ratios={p.pair: p.ratio for p in probes})
