"""What an operator's overlay checks report, shared by every backend.

`ping`, `arping` and `tracepath` run inside an instance give the same kind of
answer on the simulator, in network namespaces and on real VMs; keeping the
result types, the size arithmetic and the wording of the failure reasons here
lets one overlay check (and one report) read all of them.

Sizes follow the tools: `ping -s S` sends an IP packet of S + 28 bytes (20 IP +
8 ICMP); a VXLAN frame adds 50 bytes on an IPv4 underlay (outer IP 20 + UDP 8 +
VXLAN 8 + the inner Ethernet header 14, RFC 7348 §5), so an overlay MTU of 1450
fits a 1500-byte underlay and `ping -M do -s 1422` is the largest that passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.topology.semantic import VXLAN_OVERHEAD

ICMP_ECHO_OVERHEAD = 28  # IPv4 header 20 + ICMP header 8 on top of `ping -s` payload
ARP_PACKET = 28  # an Ethernet/IPv4 ARP request or reply without padding
ZERO_MAC = "00:00:00:00:00:00"  # `bridge fdb append 00:00:00:00:00:00 dst VTEP`: flood list
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

__all__ = [
    "ARP_PACKET",
    "BROADCAST_MAC",
    "ICMP_ECHO_OVERHEAD",
    "VXLAN_OVERHEAD",
    "ZERO_MAC",
    "PingResult",
    "TracepathResult",
    "blackhole",
    "frag_needed",
    "message_too_long",
    "underlay_bytes",
]


@dataclass(frozen=True)
class PingResult:
    """One `ping -c 1` from an instance: did the echo reply come back, and if not, why."""

    ok: bool
    reason: str
    rtt_s: float | None = None
    frag_mtu: int | None = None  # the MTU a 'frag needed' / 'message too long' answer named


@dataclass(frozen=True)
class TracepathResult:
    """`tracepath` across the overlay: the path MTU it settled on and whether it got through.

    A blackhole (encapsulated frames dropped for size with no ICMP 'frag needed'
    coming back) shows as `reached=False` with `pmtu` still at the overlay MTU:
    tracepath never learns a smaller value, it only sees its probes vanish.
    """

    pmtu: int
    reached: bool
    reason: str


def underlay_bytes(overlay_ip_bytes: int) -> int:
    """Size on the underlay of an overlay IP packet once VXLAN-encapsulated."""
    return overlay_ip_bytes + VXLAN_OVERHEAD


def blackhole(frame: int, path_mtu: int) -> str:
    return f"dropped: {frame}-byte frame exceeds underlay path MTU {path_mtu} (blackhole)"


def frag_needed(mtu: int) -> str:
    """What ping prints when the local VTEP returns ICMP 'fragmentation needed'."""
    return f"Frag needed and DF set (mtu = {mtu})"


def message_too_long(mtu: int) -> str:
    """What `ping -M do` prints when the packet exceeds the instance's own interface MTU."""
    return f"local error: message too long, mtu={mtu}"
