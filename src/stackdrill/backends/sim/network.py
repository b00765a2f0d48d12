"""Simulated underlay networks: links up/down, partitions, random loss, rate limits, MTU.

Each topology network is one L2 segment (a switch). A packet from host a to
host b on network n gets through when both hosts are up, both links have
carrier, no partition separates them, it is not larger than either link's MTU,
and the seeded loss draw of the SENDER's link lets it pass: a `packet_loss`
fault drops what leaves its host, as the netns backend's nftables rule does
(an `output` hook matching `oifname`), never what arrives (recorded in
tests/conformance/recordings/underlay-loss-*.json). Time on the wire is
latency plus size over the slowest link's rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.topology import Network, Topology

TCP_RTO_S = 0.2  # Linux's minimum retransmission timeout
ETHERNET_HEADER = 14  # counted by tbf: an egress skb's length includes its MAC header
TCP_IP_HEADERS = 52  # IPv4 20 + TCP 20 + the timestamp option 12 (on by default in Linux)


@dataclass
class LinkState:
    up: bool = True
    loss: float = 0.0
    rate_mbit: float | None = None  # a tbf limit below the network's bandwidth
    mtu: int | None = None  # lowered MTU (fault); None = the network's


class Underlay:
    def __init__(self, kernel: Kernel, topology: Topology, hosts: dict[str, SimHost]) -> None:
        self.kernel = kernel
        self.hosts = hosts
        self.networks: dict[str, Network] = {n.name: n for n in topology.networks}
        self.links: dict[tuple[str, str], LinkState] = {
            (h, n.name): LinkState() for n in topology.networks for h in n.addresses
        }
        # partitions: (id, network or None for all, groups)
        self.partitions: dict[int, tuple[str | None, tuple[frozenset[str], ...]]] = {}
        # cuts: (network or None for all, the (sender, receiver) directions dropped)
        self.cuts: dict[int, tuple[str | None, frozenset[tuple[str, str]]]] = {}
        self._next_partition = 0
        self._listeners: list[Callable[[], None]] = []
        # (a, b, network, bytes) -> one-way delay: a pure function of the network and the two
        # links' rate limits, asked ~7 times per replicated write; emptied by `set_rate`
        self._delays: dict[tuple[str, str, str, int], float] = {}
        for host in hosts.values():
            host.subscribe(lambda *_a: self._changed())

    # ----------------------------------------------------------- observers

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Called after any change that may alter who reaches whom."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ----------------------------------------------------------- queries

    def attached(self, host: str, network: str) -> bool:
        return (host, network) in self.links

    def address(self, host: str, network: str) -> str:
        return self.networks[network].addresses[host]

    def link_mtu(self, host: str, network: str) -> int:
        link = self.links[(host, network)]
        return link.mtu if link.mtu is not None else self.networks[network].mtu

    def connected(self, a: str, b: str, network: str) -> bool:
        """Can a and b converse on `network` right now (ignoring loss): packets pass both
        ways, as a TCP connection, a ping or a cluster ring needs?"""
        if not self.passes(a, b, network):
            return False
        # only a one-way cut makes `passes` asymmetric: without one, b -> a is a -> b
        return a == b or not self.cuts or self.passes(b, a, network)

    def passes(self, a: str, b: str, network: str) -> bool:
        """Can a packet a sends reach b on `network` right now (ignoring loss)? Differs from
        `connected` only under a one-way cut."""
        if self.cuts and any((a, b) in dropped for net, dropped in self.cuts.values()
                             if net is None or net == network):
            return False
        if a == b:
            return self.hosts[a].up
        la, lb = self.links.get((a, network)), self.links.get((b, network))
        if la is None or lb is None or not (la.up and lb.up):
            return False
        if not (self.hosts[a].up and self.hosts[b].up):
            return False
        return not self.partitions or self._unpartitioned(a, b, network)

    def _unpartitioned(self, a: str, b: str, network: str) -> bool:
        """No partition on `network` puts a and b in different groups."""
        for net, groups in self.partitions.values():
            if net is not None and net != network:
                continue
            ga = next((g for g in groups if a in g), None)
            gb = next((g for g in groups if b in g), None)
            if ga is not None and gb is not None and ga is not gb:
                return False
        return True

    def path_mtu(self, a: str, b: str, network: str) -> int:
        return min(self.link_mtu(a, network), self.link_mtu(b, network))

    def delay(self, a: str, b: str, network: str, nbytes: int) -> float:
        """One-way time on the wire for `nbytes` (remembered until a rate limit changes)."""
        key = (a, b, network, nbytes)
        known = self._delays.get(key)
        if known is None:
            rate = self.bottleneck_mbit(a, b, network)
            known = self.networks[network].latency_ms / 1000.0 + nbytes * 8 / (rate * 1e6)
            self._delays[key] = known
        return known

    def bottleneck_mbit(self, a: str, b: str, network: str) -> float:
        """The slowest of the network's bandwidth and a rate limit on either host's link."""
        rate = self.networks[network].bandwidth_mbit
        for h in (a, b):
            limit = self.links[(h, network)].rate_mbit
            if limit is not None:
                rate = min(rate, limit)
        return rate

    def goodput_mbit(self, a: str, b: str, network: str, ip_mtu: int | None = None,
                     encap_bytes: int = 0) -> float:
        """What `iperf3` reports for one long TCP stream a -> b, in Mbit/s of payload.

        The bottleneck (the network's bandwidth or a tbf limit on either link) carries
        full-size frames back to back; tbf charges each its whole length
        (net/sched/sch_tbf.c, tbf_dequeue: psched_l2t_ns(&q->rate, qdisc_pkt_len(skb))),
        MAC header included, while iperf counts only the TCP payload. `ip_mtu` is the IP
        packet size the stream uses (default: the path MTU); a tunnel adds `encap_bytes`
        per frame (VXLAN: 50, the inner Ethernet header included)."""
        rate = self.bottleneck_mbit(a, b, network)
        mtu = self.path_mtu(a, b, network) if ip_mtu is None else ip_mtu
        return rate * (mtu - TCP_IP_HEADERS) / (mtu + encap_bytes + ETHERNET_HEADER)

    def send(self, a: str, b: str, network: str, nbytes: int) -> float | None:
        """Delay of one packet a -> b, or None when it is lost or cannot pass."""
        if not self.passes(a, b, network):
            return None
        if nbytes > self.path_mtu(a, b, network):
            return None
        return self.transit(a, b, network, nbytes)

    def transit(self, a: str, b: str, network: str, nbytes: int) -> float | None:
        """`send` for a packet the caller has already seen pass and fit the path MTU (the
        overlay checks both to say why a frame is dropped): the loss draw, then the delay."""
        loss = self.links[(a, network)].loss  # leaving a; b's loss drops only what b sends
        if loss > 0 and self.kernel.rng.random() < loss:
            return None
        return self.delay(a, b, network, nbytes)

    def stream(self, a: str, b: str, network: str, nbytes: int) -> float | None:
        """Time for a TCP stream to carry `nbytes` a -> b, or None when no path exists.

        TCP cuts the data into MTU-sized segments and retransmits lost ones (one RTO of
        200 ms per loss, drawn once per transfer), so loss costs time, not data. Only the
        data's direction counts: a lost ACK is covered by the next, cumulative one.
        """
        if not self.connected(a, b, network):
            return None
        delay = self.delay(a, b, network, nbytes)
        loss = self.links[(a, network)].loss
        while loss > 0 and self.kernel.rng.random() < loss:
            delay += TCP_RTO_S
            if delay > 60:
                return None
        return delay

    # ----------------------------------------------------------- faults

    def set_link(self, host: str, network: str, up: bool) -> None:
        self.links[(host, network)].up = up
        self.kernel.log(f"net/{network}", "link", host=host, up=up)
        self._changed()

    def set_loss(self, host: str, network: str, probability: float) -> None:
        self.links[(host, network)].loss = probability
        self.kernel.log(f"net/{network}", "loss", host=host, probability=probability)
        self._changed()

    def set_rate(self, host: str, network: str, mbit: float | None) -> None:
        self.links[(host, network)].rate_mbit = mbit
        self._delays.clear()
        self.kernel.log(f"net/{network}", "rate", host=host, mbit=mbit)
        self._changed()

    def set_mtu(self, host: str, network: str, mtu: int | None) -> None:
        self.links[(host, network)].mtu = mtu
        self.kernel.log(f"net/{network}", "mtu", host=host, mtu=mtu)
        self._changed()

    def partition(self, groups: tuple[tuple[str, ...], ...], network: str | None) -> int:
        pid = self._next_partition
        self._next_partition += 1
        self.partitions[pid] = (network, tuple(frozenset(g) for g in groups))
        self.kernel.log("net", "partition", id=pid, network=network or "*",
                        groups=["+".join(g) for g in groups])
        self._changed()
        return pid

    def unpartition(self, pid: int) -> None:
        if self.partitions.pop(pid, None) is not None or self.cuts.pop(pid, None) is not None:
            self.kernel.log("net", "unpartition", id=pid)
            self._changed()

    def cut(self, directed: tuple[tuple[str, str], ...], network: str | None) -> int:
        """Drop what each (sender, receiver) sends; undone by `unpartition(id)`."""
        pid = self._next_partition
        self._next_partition += 1
        self.cuts[pid] = (network, frozenset(directed))
        self.kernel.log("net", "cut", id=pid, network=network or "*",
                        directions=[f"{a}>{b}" for a, b in directed])
        self._changed()
        return pid
