"""Overlay checks over probe results: L2 reachability, path MTU and ARP.

A probe is what an operator runs from one host (or instance) towards an instance on
the overlay: `arping` (which MAC answers), a small `ping`, a `ping -M do -s 1422`
(a full 1450-byte frame with Don't Fragment), and `tracepath` (the path MTU). VXLAN
costs 50 bytes, so a 1500-byte underlay gives a 1450 path MTU. Where the MTU that is
too small sits decides what the probe sees (recorded on the kernel in
tests/conformance/recordings/vxlan-mtu-*.json):

* on the sending host's own underlay interface, the VXLAN device refuses the frame
  and synthesises an ICMP "fragmentation needed" back to the inner sender (Linux
  drivers/net/vxlan/vxlan_core.c, vxlan_xmit_one -> skb_tunnel_check_pmtu): ping
  prints "Frag needed and DF set (mtu = N)" and tracepath settles on N. Nothing is
  silent: the check names the refusal and the MTU.
* anywhere after it (the switch, the receiving host's interface), the frame is
  dropped without any ICMP: small packets pass and full-size ones vanish, a path-MTU
  blackhole, which the check names as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackdrill.api import CommandResult, OverlayProbe
from stackdrill.checks.result import CheckResult

VXLAN_OVERHEAD = 50
EXPECTED_MTU = 1500 - VXLAN_OVERHEAD


def overlay_reachability(
    probes: Iterable[OverlayProbe], *, name: str = "overlay_reachability"
) -> CheckResult:
    """Every probed pair reached its destination."""
    ps = list(probes)
    if not ps:
        return CheckResult.not_run(name, "no overlay probe was made")
    down = [p.pair for p in ps if not p.reachable]
    return CheckResult.of(
        name,
        [f"unreachable: {', '.join(down)}"] if down else [],
        f"{len(ps)} overlay path(s) reachable",
        unreachable=down,
    )


def overlay_mtu(
    probes: Iterable[OverlayProbe], *, expected: int = EXPECTED_MTU, name: str = "overlay_mtu"
) -> CheckResult:
    """Full-size frames pass and the path MTU equals `expected` on every reachable pair.
    Full-size frames refused with a 'frag needed' answer are named as such; small packets
    passing while full-size ones vanish without one is named a path-MTU blackhole."""
    ps = [p for p in probes if p.reachable]
    measured = [p for p in ps if p.full_size_ok is not None or p.path_mtu is not None]
    if not measured:
        return CheckResult.not_run(name, "no reachable overlay pair had its MTU probed")
    problems: list[str] = []
    blackholes: list[str] = []
    for p in measured:
        if p.full_size_ok is False and p.frag_needed_mtu is not None:
            problems.append(
                f"{expected}-byte frames {p.pair} are refused, not lost: the sending side "
                f"answered ICMP 'frag needed' (mtu {p.frag_needed_mtu}), so its underlay MTU "
                f"is below what the overlay needs (tracepath: {p.path_mtu or 'no answer'})"
            )
        elif p.full_size_ok is False and (p.path_mtu is None or p.path_mtu >= expected):
            blackholes.append(p.pair)
            problems.append(
                f"path-MTU blackhole {p.pair}: small packets pass, {expected}-byte frames are"
                f" dropped silently (tracepath: {p.path_mtu or 'no answer'})"
            )
        elif p.path_mtu is not None and p.path_mtu != expected:
            problems.append(f"path MTU {p.pair} is {p.path_mtu}, expected {expected}")
        elif p.full_size_ok is False:
            problems.append(f"{expected}-byte frames {p.pair} are dropped")
    return CheckResult.of(
        name,
        problems,
        f"path MTU {expected} on {len(measured)} overlay path(s)",
        blackholes=blackholes,
    )


def overlay_arp(probes: Iterable[OverlayProbe], *, name: str = "overlay_arp") -> CheckResult:
    """ARP for each probed instance resolves to the MAC of its port (after a move too)."""
    ps = [p for p in probes if p.expected_mac is not None]
    if not ps:
        return CheckResult.not_run(name, "no ARP probe with a known expected MAC")
    problems: list[str] = []
    for p in ps:
        if p.arp_mac is None:
            problems.append(f"ARP {p.pair}: no reply")
        elif p.arp_mac.lower() != (p.expected_mac or "").lower():
            problems.append(f"ARP {p.pair}: {p.arp_mac}, expected {p.expected_mac}")
    return CheckResult.of(name, problems, f"ARP resolves the right MAC on {len(ps)} path(s)")


def reachable_within(
    probes: Iterable[OverlayProbe],
    *,
    since: float,
    bound_s: float,
    name: str = "overlay_reachable_within",
) -> CheckResult:
    """Each pair probed after `since` (e.g. an instance moved) is reachable from some time
    t <= since + bound_s on, and stays so in every later probe."""
    by_pair: dict[str, list[OverlayProbe]] = {}
    for p in sorted(probes, key=lambda p: p.at):
        if p.at >= since:
            by_pair.setdefault(p.pair, []).append(p)
    if not by_pair:
        return CheckResult.not_run(name, f"no overlay probe after t={since:g}s")
    problems: list[str] = []
    took: dict[str, float | None] = {}
    for pair, ps in sorted(by_pair.items()):
        last_down = max((p.at for p in ps if not p.reachable), default=None)
        up = [p.at for p in ps if p.reachable and (last_down is None or p.at > last_down)]
        took[pair] = (up[0] - since) if up else None
        if not up:
            problems.append(f"{pair} still unreachable at t={ps[-1].at:g}s")
        elif up[0] - since > bound_s:
            problems.append(
                f"{pair} reachable only {up[0] - since:g}s after t={since:g}s (bound {bound_s:g}s)"
            )
    return CheckResult.of(
        name, problems, f"{len(by_pair)} path(s) reachable within {bound_s:g}s", took=took
    )


def overlay_checks(
    probes: Iterable[OverlayProbe], *, expected_mtu: int = EXPECTED_MTU
) -> list[CheckResult]:
    """Reachability, MTU and ARP over one set of probes."""
    ps = list(probes)
    return [overlay_reachability(ps), overlay_mtu(ps, expected=expected_mtu), overlay_arp(ps)]


def overlay_probes(
    commands: Mapping[str, CommandResult],
    labels: Iterable[str],
    *,
    expected_mtu: int = EXPECTED_MTU,
    name: str = "overlay",
) -> CheckResult:
    """Reachability, MTU and ARP over the probe commands with these labels, as one result.
    A probe that never ran, or that the backend could not run (it says why), makes the
    whole check not run: a path nobody probed is not a path that works."""
    probes = []
    for label in labels:
        res = commands.get(label)
        if res is None:
            return CheckResult.not_run(name, f"probe {label!r} never ran")
        if res.probe is None:
            return CheckResult.not_run(name, f"probe {label!r} could not run: {res.detail or '?'}")
        probes.append(res.probe)
    parts = overlay_checks(probes, expected_mtu=expected_mtu)
    return CheckResult.of(name, [f"{p.name}: {p.detail}" for p in parts if not p.ok],
                          "; ".join(p.detail for p in parts))
