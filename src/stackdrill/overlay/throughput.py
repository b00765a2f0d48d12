"""The throughput probe on real backends: iperf3 from one instance to another across the
overlay, then between their hosts over the overlay's underlay network.

The backend supplies how to run a command inside an instance and on a host (`ip netns
exec` here, a guest's agent on libvirt) and where the instances run; the measuring is the
same everywhere. Each iperf3 server serves one client (`-s -1`) and is bounded by
`timeout`, so nothing outlives the probe for long even when the client never connects;
every address is inside the lab (an instance's overlay IP, a host's underlay address).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.api import CommandResult, ThroughputProbe
from stackdrill.overlay.probes import InstanceRunner
from stackdrill.topology import Topology

CONNECT_ATTEMPTS = 20  # the server may not be listening yet when the client first connects
CONNECT_PAUSE_S = 0.2
SERVER_SLACK_S = 20.0  # how long a server outlives its client's run at most


@dataclass(frozen=True)
class Endpoints:
    """Where one side of the probe runs: a runner inside the instance, one on its host."""

    instance: InstanceRunner
    host: InstanceRunner
    host_name: str


def iperf3(server: InstanceRunner, client: InstanceRunner, target: str,
           seconds: float) -> tuple[float, str]:
    """(Mbit/s of payload the server received over one TCP stream to `target`, why it is
    0.0 when it is). A refused connection is retried (the server is starting); anything
    else (no route, a timeout) ends the run with nothing carried."""
    limit = f"{seconds + SERVER_SLACK_S:g}"
    server(["sh", "-c", f"timeout {limit} iperf3 -s -1 -B {target} >/dev/null 2>&1 &"], 10)
    why = "never ran"
    for _ in range(CONNECT_ATTEMPTS):
        _rc, out = client(["iperf3", "-c", target, "-t", f"{seconds:g}", "-J",
                           "--connect-timeout", "3000"], seconds + 15)
        received, why = _received(out)
        if received is not None:
            return received, ""
        if "refused" not in why:
            return 0.0, why
        time.sleep(CONNECT_PAUSE_S)
    return 0.0, why


def _received(out: str) -> tuple[float | None, str]:
    try:  # the JSON report, whatever a backend's runner printed around it
        data = json.loads(out[out.find("{"):out.rfind("}") + 1])
    except ValueError:
        return None, f"no iperf3 report: {out.strip()[-200:] or '(nothing printed)'}"
    if not isinstance(data, dict):
        return None, "no iperf3 report"
    if data.get("error"):
        return None, str(data["error"])
    try:
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6, ""
    except (KeyError, TypeError, ValueError):
        return None, "iperf3 reported no received total"


def measure(topology: Topology, src: str, dst: str, ends: tuple[Endpoints, Endpoints],
            seconds: float, now: Callable[[], float]) -> CommandResult:
    """The probe from `src` to `dst` (`ends`: where each runs): overlay first, then the
    underlay between the same two hosts."""
    client, server = ends
    target = topology.instance(dst)
    overlay = next(o for o in topology.overlays if o.name == target.overlay)
    network = next(n for n in topology.networks if n.name == overlay.network)
    started = now()
    over, over_why = iperf3(server.instance, client.instance, target.ip or "", seconds)
    under, under_why = iperf3(server.host, client.host,
                              network.addresses[server.host_name], seconds)
    found = ThroughputProbe(src=src, dst=dst, src_host=client.host_name,
                            dst_host=server.host_name, overlay_mbit=round(over, 3),
                            underlay_mbit=round(under, 3), at=started)
    detail = (f"overlay {over:.3g} Mbit/s{' (' + over_why + ')' if over_why else ''}; "
              f"underlay {client.host_name}->{server.host_name} {under:.3g} Mbit/s"
              f"{' (' + under_why + ')' if under_why else ''}")
    return CommandResult(ok=over > 0 and under > 0, detail=detail, throughput=found)
