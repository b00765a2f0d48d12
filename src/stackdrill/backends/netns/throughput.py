"""TCP throughput between two lab namespaces with iperf3 (one stream, receiver's count).

Used by the bandwidth benchmark (bench/netns_bandwidth.py) and the conformance corpus's
tbf situation. Traffic goes only to an address inside the lab.
"""

from __future__ import annotations

import json
import time

from stackdrill.backends.netns import nsops

ATTEMPTS = 100  # the server may not be listening yet when the client first connects


def iperf(client_ns: str, server_ns: str, target: str, seconds: float) -> float:
    """Mbit/s of payload that `server_ns` received from `client_ns` over one TCP stream to
    `target` (an address of the server's namespace) during `seconds`."""
    server = nsops.spawn(server_ns, ["iperf3", "-s", "-1", "-B", target])
    try:
        out = ""
        for _ in range(ATTEMPTS):
            done = nsops.run(client_ns, ["iperf3", "-c", target, "-t", str(seconds), "-J"],
                             timeout=seconds + 30, check=False)
            out = done.stdout
            try:
                data = json.loads(out)
                return float(data["end"]["sum_received"]["bits_per_second"]) / 1e6
            except (ValueError, KeyError):
                pass
            time.sleep(0.05)  # the server was not listening yet
        raise RuntimeError(f"iperf3 to {target} failed: {out[-300:]}")
    finally:
        server.kill()
        server.wait(timeout=5)
