"""Fencing from inside the cluster: a fence agent in the guests that reaches the lab's
power controller, as fence_virt reaches fence_virtd over a serial channel.

A guest cannot reach libvirt (the lab bridges carry no host address), so each guest of a
cluster fenced by `power` gets a virtio-serial port, `org.stackdrill.fence.0`, whose
host end is a socket qemu binds (its path is in the live domain XML). The agent,
`fence_stackdrill`, writes `fence VICTIM TAG` to the port and waits for `ok TAG` or
`fail TAG`; the lab's listener (one thread per guest) powers the victim off through the
power driver, which waits until libvirt reports it off, then answers.

Two callers use the agent, as on an operator's node:
- dlm_controld, with `fence_all fence_stackdrill` in /etc/dlm/dlm.conf (dlm.conf(5)
  "Simple devices": a bridge agent passing the request on; the victim's node id comes
  on stdin as `node=ID`), so a lost member is fenced before the DLM recovers its locks.
- DRBD's fence-peer handler under `fencing resource-and-stonith` (as
  stonith_admin-fence-peer.sh): it shoots the peer and exits 7 once it is off.

A two-node partition where both sides fence is a race. The lab's fence device acts
after a static delay per requester, FENCE_S + (node id - 1) x FENCE_DELAY_S (what
pcmk_delay_base gives each node), and refuses a requester that is no longer on by then:
the lower node id wins, as the simulator's cluster decides (sim/cluster.py).
"""

from __future__ import annotations

import logging
import socket
import threading
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import libvirt

from stackdrill.api import PowerState
from stackdrill.backends.libvirt.hvaccess import local_path
from stackdrill.topology import ClusterFencing, Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)

CHANNEL = "org.stackdrill.fence.0"
AGENT = "/usr/local/sbin/fence_stackdrill"
NODES = "/etc/stackdrill/fence-nodes"  # "NODEID HOST" per line, for dlm_controld's node=ID
FENCE_S = 2.0  # the agent's own time (the simulator's ClusterSim fence_s)
FENCE_DELAY_S = 5.0  # per node id above 1 (the simulator's fence_delay_s)
REPLY_S = 120  # the agent's wait for the lab's answer
RETRY_S = 1.0  # a guest whose channel is not there (off, booting) is looked at again


def fenced_hosts(topology: Topology) -> list[str]:
    """The guests that fence through the lab: the nodes of clusters fenced by `power`."""
    return sorted({host for c in topology.clusters if c.fencing is ClusterFencing.POWER
                   for host in c.nodes})


def node_ids(topology: Topology, host: str) -> dict[int, str]:
    """Corosync node id -> host, in `host`'s cluster (ids as corosync_conf numbers them)."""
    cluster = next(c for c in topology.clusters if host in c.nodes)
    return dict(enumerate(cluster.nodes, start=1))


AGENT_SCRIPT = f"""#!/bin/bash
# stackdrill's fence agent (see stackdrill.backends.libvirt.fencing). dlm_controld passes
# key=val lines on stdin (node=ID); `--host NAME` names the victim directly (DRBD's
# fence-peer handler). Exit 0: the victim is off; 1: not fenced.
victim=""
if [ "$1" = --host ]; then
    victim=$2
else
    while read -r -t 5 line; do
        case "$line" in node=*) node=${{line#node=}} ;; esac
    done
    victim=$(awk -v id="$node" '$1 == id {{ print $2 }}' {NODES})
fi
[ -n "$victim" ] || {{ echo "fence_stackdrill: no victim" >&2; exit 1; }}
port=""
for d in /sys/class/virtio-ports/*; do
    [ "$(cat "$d/name" 2>/dev/null)" = {CHANNEL} ] && port=/dev/${{d##*/}}
done
[ -n "$port" ] || {{ echo "fence_stackdrill: no {CHANNEL} port" >&2; exit 1; }}
tag=$$.$RANDOM
mkdir -p /run/stackdrill
exec 9>/run/stackdrill/fence.lock && flock 9  # one request on the port at a time
# a port has one opener at a time, and the previous agent's close may not have reached the
# port yet when the lock passes to the next one (EBUSY, seen with two agents at once)
for i in $(seq 50); do exec 3<>"$port" 2>/dev/null && break; sleep 0.1; done
[ -e /dev/fd/3 ] || {{ echo "fence_stackdrill: $port stays busy" >&2; exit 1; }}
echo "fence $victim $tag" >&3
while read -r -t {REPLY_S} answer rest <&3; do
    [ "$rest" = "$tag" ] || continue
    [ "$answer" = ok ] && exit 0
    echo "fence_stackdrill: fencing $victim failed" >&2; exit 1
done
echo "fence_stackdrill: no answer about $victim" >&2
exit 1
"""


def install_command(topology: Topology, host: str) -> str:
    """Write the agent, the node id map and dlm_controld's fence configuration."""
    ids = "".join(f"{i} {h}\n" for i, h in node_ids(topology, host).items())
    return (f"mkdir -p /etc/stackdrill /etc/dlm /usr/local/sbin && "
            f"cat > {AGENT} <<'EOF'\n{AGENT_SCRIPT}EOF\nchmod 755 {AGENT} && "
            f"cat > {NODES} <<'EOF'\n{ids}EOF\n"
            f"echo 'fence_all {AGENT}' > /etc/dlm/dlm.conf")


def channel_path(xml: str) -> str | None:
    """The host end of the guest's fence channel, from its live domain XML."""
    for channel in ET.fromstring(xml).iter("channel"):
        target = channel.find("target")
        source = channel.find("source")
        if target is not None and target.get("name") == CHANNEL and source is not None:
            return source.get("path")
    return None


class FenceListener:
    """The lab's fence device: answers the fence agents of every fenced guest."""

    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab
        self.hosts = fenced_hosts(lab.topology)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for host in self.hosts:
            thread = threading.Thread(target=self._serve, args=(host,), daemon=True,
                                      name=f"fence-{host}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self, host: str) -> None:
        """Connect to the guest's channel whenever it has one; a power cycle ends the
        connection (qemu exits), the next boot's qemu binds a new socket."""
        while not self._stop.is_set():
            path = self._path(host)
            if path is None:
                self._stop.wait(RETRY_S)
                continue
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(path)
                    sock.settimeout(RETRY_S)
                    self._converse(host, sock)
            except OSError as exc:
                log.debug("fence channel of %s: %s", host, exc)
            self._stop.wait(RETRY_S)

    def _path(self, host: str) -> str | None:
        try:
            dom = self.lab.domain(host)
            path = channel_path(dom.XMLDesc(0)) if dom.isActive() else None
            # a guest on a second local daemon: its socket seen from this machine
            return None if path is None else local_path(self.lab.nodes[host].uri, path)
        except libvirt.libvirtError:
            return None

    def _converse(self, host: str, sock: socket.socket) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return  # qemu went away: the guest is off
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                words = line.decode(errors="replace").split()
                if len(words) == 3 and words[0] == "fence":
                    ok = self.fence(words[1], host)
                    sock.sendall(f"{'ok' if ok else 'fail'} {words[2]}\n".encode())

    def fence(self, victim: str, requester: str) -> bool:
        """Power `victim` off for `requester` after the requester's delay; False when the
        victim is not a lab host, the requester lost power meanwhile, or it stays on."""
        if victim not in self.lab.nodes:
            return False
        ids = {h: i for i, h in node_ids(self.lab.topology, requester).items()}
        delay = FENCE_S + (ids.get(requester, 1) - 1) * FENCE_DELAY_S
        self.lab.log("cluster-fence-start", victim=victim, by=requester, delay=delay)
        if self._stop.wait(delay):
            return False
        power = self.lab.drivers.power
        if power.state(requester) is not PowerState.ON:
            self.lab.log("cluster-fence-abandoned", victim=victim, by=requester)
            return False
        try:
            power.power_off(victim).result(timeout=60)
        except Exception as exc:  # the power controller's refusal, whatever its type
            self.lab.log("cluster-fence-failed", victim=victim, by=requester, error=exc)
            return False
        done = power.state(victim) is PowerState.OFF
        self.lab.log("cluster-fence-done", victim=victim, by=requester, ok=done)
        return done

