"""Overlay probes from inside an instance, with the operator's own tools.

What the seed checked by hand, run in the source instance's namespace toward another
instance's overlay IP: `arping` (which MAC answers), a small `ping`, a `ping -M do`
filling the overlay MTU (a full-size frame with Don't Fragment: a path-MTU blackhole
drops it silently), and `tracepath` (the path MTU). Every command is bounded by count
and time and only ever targets an address inside the lab's own namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.names import LabNames
from stackdrill.topology import Topology

_MAC = re.compile(r"([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})")
_PMTU = re.compile(r"pmtu (\d+)")


def arping(ns: str, ifname: str, ip: str) -> str | None:
    """The MAC that answers ARP for `ip` (Habets arping, raw output), None: no reply."""
    out = nsops.run(ns, ["arping", "-r", "-c", "2", "-w", "2", "-i", ifname, ip],
                    timeout=10, check=False)
    found = _MAC.search(out.stdout)
    return found.group(1).lower() if found else None


def ping(ns: str, ip: str, size: int = 56, df: bool = False, count: int = 3) -> bool:
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", "-s", str(size)]
    argv += ["-M", "do"] if df else []
    return nsops.run(ns, [*argv, ip], timeout=15, check=False).returncode == 0


def tracepath(ns: str, ip: str) -> tuple[bool, int | None]:
    """(destination reached, path MTU tracepath reports)."""
    out = nsops.run(ns, ["tracepath", "-n", "-m", "4", ip], timeout=20, check=False).stdout
    reached = "reached" in out
    found = _PMTU.findall(out)
    return reached, int(found[-1]) if found else None


def probe(names: LabNames, topology: Topology, src: str, dst: str,
          now: Callable[[], float]) -> dict[str, Any]:
    """Probe `dst`'s overlay IP from inside instance `src`; the result feeds the overlay
    expectations exactly as the simulator's probe does (same keys)."""
    target = topology.instance(dst)
    overlay = next(o for o in topology.overlays if o.name == target.overlay)
    ip = target.ip or ""
    ns = names.instance_ns(src)
    full = overlay.mtu - 28  # ICMP payload filling the overlay MTU (IP 20 + ICMP 8)
    mac = arping(ns, names.instance_if(), ip)
    small = ping(ns, ip)
    big = ping(ns, ip, size=full, df=True)
    reached, pmtu = tracepath(ns, ip)
    path_mtu = pmtu if reached else None
    return {
        "ok": small, "probe": "overlay", "src": src, "dst": dst,
        "reachable": small, "full_size_ok": big, "path_mtu": path_mtu,
        "arp_mac": mac, "expected_mac": target.mac, "at": now(),
        "detail": f"ping {'ok' if small else 'no answer'}; {full}-byte DF ping "
                  f"{'ok' if big else 'no answer'}; pmtu {path_mtu}; arp {mac}",
    }
