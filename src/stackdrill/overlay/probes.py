"""Overlay probes from inside an instance, with the operator's own tools.

What the seed checked by hand, run in the source instance's network namespace toward
another instance's overlay IP: `arping` (which MAC answers), a small `ping`, a
`ping -M do` filling the overlay MTU (a full-size frame with Don't Fragment: a path-MTU
blackhole drops it silently), and `tracepath` (the path MTU). Every command is bounded by
count and time and only targets an address inside the lab. The backend supplies how to
run a command in the instance (`ip netns exec` on this host, or through a guest's agent);
the result is the same typed value on every backend, so one overlay check reads them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from stackdrill.api import CommandResult, OverlayProbe
from stackdrill.overlay.model import ICMP_ECHO_OVERHEAD
from stackdrill.topology import Topology

InstanceRunner = Callable[[Sequence[str], float], tuple[int, str]]  # argv, timeout -> rc, out

_MAC = re.compile(r"([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})")
_PMTU = re.compile(r"pmtu (\d+)")
# iputils ping: 'Frag needed and DF set (mtu = 1350)' for the ICMP the sending VTEP
# synthesises, then 'local error: message too long, mtu=1350' once the PMTU is cached
_FRAG_NEEDED = re.compile(r"(?:Frag needed and DF set \(mtu = |message too long, mtu=)(\d+)")


def arping(run: InstanceRunner, ifname: str, ip: str) -> str | None:
    """The MAC that answers ARP for `ip` (Habets arping, raw output), None: no reply."""
    _rc, out = run(["arping", "-r", "-c", "2", "-w", "2", "-i", ifname, ip], 10)
    found = _MAC.search(out)
    return found.group(1).lower() if found else None


def ping(run: InstanceRunner, ip: str, size: int = 56, df: bool = False,
         count: int = 3) -> bool:
    return ping_answer(run, ip, size, df, count)[0]


def ping_answer(run: InstanceRunner, ip: str, size: int = 56, df: bool = False,
                count: int = 3) -> tuple[bool, int | None]:
    """(answered, the MTU a 'frag needed' answer named, if one came). Not `-q`: quiet
    ping prints neither the ICMP error nor its local error, only '+N errors'."""
    argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", "-s", str(size)]
    argv += ["-M", "do"] if df else []
    rc, out = run([*argv, ip], 15)
    found = _FRAG_NEEDED.search(out)
    return rc == 0, int(found.group(1)) if found else None


def tracepath(run: InstanceRunner, ip: str) -> tuple[bool, int | None]:
    """(destination reached, path MTU tracepath reports)."""
    out = run(["tracepath", "-n", "-m", "4", ip], 20)[1]
    found = _PMTU.findall(out)
    return "reached" in out, int(found[-1]) if found else None


def probe(run: InstanceRunner, ifname: str, topology: Topology, src: str, dst: str,
          now: Callable[[], float]) -> CommandResult:
    """Probe `dst`'s overlay IP from inside instance `src` (whose interface on the overlay
    is `ifname`); the result feeds the overlay expectations as the simulator's does."""
    target = topology.instance(dst)
    overlay = next(o for o in topology.overlays if o.name == target.overlay)
    ip = target.ip or ""
    full = overlay.mtu - ICMP_ECHO_OVERHEAD  # ICMP payload filling the overlay MTU
    mac = arping(run, ifname, ip)
    small = ping(run, ip)
    big, frag_mtu = ping_answer(run, ip, size=full, df=True)
    reached, pmtu = tracepath(run, ip)
    path_mtu = pmtu if reached else None
    found = OverlayProbe(src=src, dst=dst, reachable=small, full_size_ok=big,
                         path_mtu=path_mtu, arp_mac=mac, expected_mac=target.mac, at=now(),
                         frag_needed_mtu=frag_mtu)
    return CommandResult(
        ok=small, probe=found,
        detail=f"ping {'ok' if small else 'no answer'}; {full}-byte DF ping "
               f"{'ok' if big else 'no answer'}; pmtu {path_mtu}; arp {mac}")
