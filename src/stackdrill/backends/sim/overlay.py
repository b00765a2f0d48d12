"""Simulated VXLAN overlay: a central controller programs every VTEP, frames go peer to peer.

The seed's vCider switch and today's Linux VXLAN with a controller share one
shape, and the failures rehearsed here come from its two halves drifting apart:

* control plane — the controller knows every port (MAC, IP, host) and, after
  `push_delay_s`, writes each host's static FDB: an all-zero MAC entry per
  remote VTEP (head-end replication of broadcast and unknown unicast) and one
  entry per remote MAC (`bridge fdb append ... self permanent`). A host whose
  controller feed is stale keeps forwarding to where a MAC used to be.
* data plane — each host bridges its instance ports and `vxlan0`; the bridge
  learns source MACs (ageing 300 s) and the vxlan device learns unknown MACs
  from the outer source address, but drops frames whose source MAC has a
  static entry pointing at another VTEP (Linux `vxlan_snoop`: "don't migrate
  static entries"). A frame of overlay size S crosses the underlay as S + 50
  bytes through `Underlay.send`, which gives latency, loss and the MTU check.

Frames are handled hop by hop at the simulated time they arrive, so learning,
ageing and controller pushes interleave with traffic as they would for real.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from functools import partial
from typing import Any

import simpy

from stackdrill.api import PowerState
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.neighbour import NeighTable
from stackdrill.backends.sim.network import Underlay
from stackdrill.backends.sim.overlay_plane import (
    ARP_RETRANS_S,
    ARP_TRIES,
    ICMP_ERROR_BYTES,
    TRACEPATH_MAX_HOPS,
    DataPlane,
    Delivery,
    Frame,
    Port,
    R,
    Vtep,
)
from stackdrill.overlay.model import (
    ARP_PACKET,
    BROADCAST_MAC,
    ICMP_ECHO_OVERHEAD,
    VXLAN_OVERHEAD,
    PingResult,
    TracepathResult,
    message_too_long,
)
from stackdrill.topology import Overlay

log = logging.getLogger(__name__)
class OverlaySim:
    """One overlay (VNI) on one underlay network: controller, VTEPs and the operator's checks."""

    def __init__(
        self,
        kernel: Kernel,
        spec: Overlay,
        underlay: Underlay,
        hosts: dict[str, SimHost],
        *,
        push_delay_s: float = 0.05,
        announce: bool = True,
        announce_count: int = 1,
        announce_interval_s: float = 0.1,
        learning: bool = True,
        guest_ipv6: bool = True,
        ping_timeout_s: float = 1.0,
    ) -> None:
        self.kernel = kernel
        self.spec = spec
        self.underlay = underlay
        self.hosts = hosts
        self.push_delay_s = push_delay_s
        self.announce = announce
        self.announce_count = announce_count
        self.announce_interval_s = announce_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.guest_ipv6 = guest_ipv6  # a plugged guest's interface speaks as it comes up
        self.component = f"overlay/{spec.name}"
        net = underlay.networks[spec.network]
        # The overlay's MTU is what the guests and the bridge use; vxlan0 itself carries at
        # most the underlay's MTU - 50: bound to its underlay with `dev` it refuses more
        # (EINVAL, MACHINE-FACTS) or, on older kernels, is clamped (vxlan_config_apply:
        # `if (dev->mtu > max_mtu) dev->mtu = max_mtu`). Larger frames die at the bridge.
        clamped = min(spec.mtu, net.mtu - VXLAN_OVERHEAD)
        if clamped < spec.mtu:
            kernel.log(f"overlay/{spec.name}", "vxlan-mtu-clamped", mtu=spec.mtu,
                       device_mtu=clamped, underlay=net.name, underlay_mtu=net.mtu)
        self.ports: dict[str, Port] = {}
        self.tables: dict[str, NeighTable] = {}  # port -> its instance's ARP cache
        self._pending: set[str] = set()
        self._entries: list[tuple[str, str, str]] | None = None  # see _controller_entries
        self._by_mac: dict[str, list[tuple[str, str]]] = {}  # see _controller_entries
        self._changes: list[str] = []  # MACs whose entries changed, in order: see _program
        vteps = {h: Vtep(h, addr, mtu=clamped) for h, addr in sorted(net.addresses.items())
                 if h in hosts}
        self.plane = DataPlane(kernel, underlay, spec.network, hosts, vteps, self.ports,
                               learning=learning, component=self.component)
        self.vteps = vteps
        for name in vteps:
            hosts[name].subscribe(self._power_changed)
            self._program(name)
        log.debug("overlay %s: VTEPs on %s", spec.name, ", ".join(vteps))
        kernel.log(self.component, "up", vni=spec.vni, network=spec.network, mtu=spec.mtu,
                   vteps=[f"{v.host}={v.address}" for v in vteps.values()])

    # ------------------------------------------------------------ controller

    def plug(self, port: str, mac: str, ip: str, host: str) -> None:
        """A port appears on `host`; the controller tells every VTEP, then the port announces."""
        vtep = self._vtep(host)
        old = self.ports.get(port)
        if old is not None and old.host != host:
            self.plane.remove_tap(self.vteps[old.host], port, why="moved")
        self.ports[port] = Port(port, mac, ip, host)  # its ARP cache moves with it
        self._ports_changed(mac if old is None else old.mac, mac)
        running = self.hosts[host].up
        if running:
            vtep.add_tap(port)
            if self.guest_ipv6:
                self.plane.link_up(vtep, port, mac)
        self.kernel.log(self.component, "plug", port=port, mac=mac, ip=ip, host=host,
                        moved_from=old.host if old is not None and old.host != host else "-",
                        tap="up" if running else "host-down")
        self._push_all()
        if self.announce:
            for i in range(self.announce_count):
                # Scheduled after the pushes, so at equal times the FDB is written first.
                self.kernel.call_later(self.push_delay_s + i * self.announce_interval_s,
                                       lambda: self._announce(port, host))

    def unplug(self, port: str, host: str) -> None:
        """The port leaves `host`; if the controller still has it there, it forgets the port."""
        vtep = self._vtep(host)
        self.plane.remove_tap(vtep, port, why="unplug")
        current = self.ports.get(port)
        if current is not None and current.host == host:
            del self.ports[port]
            self._ports_changed(current.mac)
            self.kernel.log(self.component, "unplug", port=port, host=host)
            self._push_all()
        else:
            self.kernel.log(self.component, "unplug", port=port, host=host, controller="elsewhere")

    def _push_all(self) -> None:
        for name in self.vteps:
            self._schedule_push(name)

    def _schedule_push(self, host: str) -> None:
        """One pending push per host: it reads the controller's state when it fires."""
        if host not in self._pending:
            self._pending.add(host)
            self.kernel.call_later(self.push_delay_s, partial(self._push, host))

    def _push(self, host: str) -> None:
        self._pending.discard(host)
        vtep = self.vteps[host]
        if vtep.stale:
            self.kernel.log(self.component, "push-skipped", host=host, why="stale")
            return
        if not self.hosts[host].up or not vtep.device_up:
            self.kernel.log(self.component, "push-skipped", host=host,
                            why="host-down" if not self.hosts[host].up else "no-vxlan0")
            return
        self._program(host)

    def _ports_changed(self, *macs: str) -> None:
        self._entries = None
        self._changes += macs

    def _program(self, host: str) -> None:
        """Write the controller's desired FDB into one VTEP; log what changed.

        A VTEP whose static entries are known to be what the controller wanted at some
        point (`programmed`) is brought up to date from the MACs changed since: each push
        reaches every host, and comparing every port's entry on each made a large lab's
        bring-up cost hosts x ports per round of plugs."""
        vtep = self.vteps[host]
        flood = [v.address for v in self.vteps.values() if v.host != host]
        if vtep.programmed is None:
            want = {mac: address for mac, at, address in self._controller_entries()
                    if at != host}
            gone = [m for m in vtep.static if m not in want]
        else:
            self._controller_entries()  # the MAC index is current
            want, gone = {}, []
            for mac in dict.fromkeys(self._changes[vtep.programmed:]):
                address = self._desired(mac, host)
                if address is not None:
                    want[mac] = address
                elif mac in vtep.static:
                    gone.append(mac)
        vtep.programmed = len(self._changes)
        added = sorted(f"{m}>{a}" for m, a in want.items() if vtep.static.get(m) != a)
        removed = sorted(gone)
        if flood == vtep.flood and not added and not removed:
            return
        for mac in removed:
            del vtep.static[mac]
        vtep.static.update(want)
        for mac in [m for m in vtep.learned if m in vtep.static]:
            del vtep.learned[mac]
        vtep.flood = flood
        self.kernel.log(self.component, "fdb", host=host, flood=flood, add=added, remove=removed)

    def _desired(self, mac: str, host: str) -> str | None:
        """The VTEP the controller gives `host` for `mac`: of the ports with that MAC on
        other hosts, the last in port-name order (as a mapping built in that order has it)."""
        address = None
        for at, addr in self._by_mac.get(mac, ()):
            if at != host:
                address = addr
        return address

    def _controller_entries(self) -> list[tuple[str, str, str]]:
        """(MAC, host, VTEP address) of every port on a VTEP, in port-name order: what the
        controller programs, less the ports of the host being programmed; and the same by
        MAC. Kept from one plug or unplug to the next: a push reaches every host, and
        sorting every port for each of them made a large lab's bring-up cost hosts x ports
        x log(ports)."""
        if self._entries is None:
            self._entries = [(p.mac, p.host, self.vteps[p.host].address)
                             for p in sorted(self.ports.values(), key=lambda p: p.name)
                             if p.host in self.vteps]
            self._by_mac = {}
            for mac, at, address in self._entries:
                self._by_mac.setdefault(mac, []).append((at, address))
        return self._entries

    def _announce(self, port: str, host: str) -> None:
        """Gratuitous ARP from the port: re-teaches every bridge where its MAC lives."""
        p = self.ports.get(port)
        if p is None or p.host != host or not self.plane.alive(p):
            return
        self.kernel.log(self.component, "garp", port=port, host=host, mac=p.mac)
        frame = Frame(p.mac, BROADCAST_MAC, ARP_PACKET, df=False, what="garp")

        def run() -> Generator[simpy.Event, Any, None]:
            delivery = yield from self.plane.transmit(p, frame)
            if not self.tables:  # no ARP cache made yet (a lab coming up): every port skips
                return
            for name in delivery.ports:
                # arp_accept=0: update, never create, so an ARP cache not made yet (empty:
                # its instance has resolved nobody) has nothing to update
                table = self.tables.get(name)
                if table is not None and name in self.ports:
                    table.heard(p.ip, p.mac, create=False)

        self.kernel.env.process(run())

    def reconverge_bound(self) -> float:
        """Upper bound, after a move, until every healthy host reaches the port again.

        The controller's push (`push_delay_s`) plus the gratuitous ARP's one-way
        trip to the farthest VTEP; stale hosts, lost announcements and a broken
        underlay are outside this bound.
        """
        names = list(self.vteps)
        wire = ARP_PACKET + VXLAN_OVERHEAD
        trip = max((self.underlay.delay(a, b, self.spec.network, wire)
                    for a in names for b in names if a != b), default=0.0)
        return self.push_delay_s + trip

    def goodput_mbit(self, src_host: str, dst_host: str) -> float:
        """`iperf3` across the overlay between two hosts' VTEPs: frames of the overlay MTU,
        each carried with VXLAN's 50 bytes on the underlay (see Underlay.goodput_mbit)."""
        for host in (src_host, dst_host):
            self._vtep(host)  # both must be VTEPs of this overlay
        return self.underlay.goodput_mbit(src_host, dst_host, self.spec.network,
                                          self.spec.mtu, VXLAN_OVERHEAD)

    # ------------------------------------------------------------ faults

    def stale_fdb(self, host: str, on: bool) -> None:
        """The controller stops (on) or resumes (off, with a full resync) updating `host`."""
        vtep = self._vtep(host)
        vtep.stale = on
        self.kernel.log(self.component, "stale-fdb", host=host, on=on)
        if not on:
            self._schedule_push(host)

    def tunnel_endpoint(self, host: str, up: bool) -> None:
        """The `tunnel_endpoint_down` fault: `vxlan0` on `host` set down; when it heals, set
        up and re-synced by the controller (as the netns backend's undo does)."""
        self.set_device(host, up)
        if up:
            self.resync(host)

    def set_device(self, host: str, up: bool) -> None:
        """`ip link set vxlan0 down|up`. The device keeps its FDB's permanent entries (the
        controller's): vxlan_stop flushes only the others (drivers/net/vxlan/vxlan_core.c,
        vxlan_stop -> vxlan_flush without do_all), and the bridge forgets what it learned
        on the port (net/bridge/br_stp_if.c, br_stp_disable_port -> br_fdb_delete_by_port)."""
        vtep = self._vtep(host)
        vtep.fault_down = not up
        self.plane.drop_device(vtep, keep_static=True)
        self.kernel.log(self.component, "vxlan0", host=host, up=up)

    def recreate_device(self, host: str) -> None:
        """`ip link del vxlan0` and `ip link add` with the same VNI, back on the bridge and
        up: a new device, so an empty FDB (no flood list either) until the controller
        programs it again (`resync`)."""
        vtep = self._vtep(host)
        vtep.fault_down = False
        self.plane.drop_device(vtep)
        self.kernel.log(self.component, "vxlan0", host=host, recreated=True)

    def resync(self, host: str) -> None:
        """The controller writes the host's whole FDB again (after `push_delay_s`)."""
        self._schedule_push(host)

    def _power_changed(self, host: SimHost, old: PowerState, new: PowerState) -> None:
        vtep = self.vteps[host.name]
        if new is PowerState.OFF:
            # Bridge, vxlan0, its FDB and the guests' taps are all volatile.
            vtep.present = False
            self.plane.drop_device(vtep)
            for port in sorted(vtep.taps):
                self.plane.remove_tap(vtep, port, why="host-off")
            self.kernel.log(self.component, "vtep-lost", host=host.name)
        elif new is PowerState.ON and old is PowerState.BOOTING:
            vtep.present = True  # provisioning re-creates an empty vxlan0; the controller fills it
            self.kernel.log(self.component, "vtep-booted", host=host.name)
            self._schedule_push(host.name)

    # ------------------------------------------------------------ operator checks

    def ping(self, src_port: str, dst_ip: str, size: int = 56, df: bool = True) -> simpy.Event:
        """`ping -c 1 -s size [-M do] dst_ip` inside the instance; value: PingResult."""
        return self.kernel.env.process(self._ping(self._port(src_port), dst_ip, size, df))

    def arping(self, src_port: str, dst_ip: str) -> simpy.Event:
        """`arping -c 3 dst_ip`: value is the MAC of the first reply, or None."""
        return self.kernel.env.process(self._arping(self._port(src_port), dst_ip))

    def tracepath(self, src_port: str, dst_ip: str) -> simpy.Event:
        """`tracepath dst_ip`; value: TracepathResult (pmtu, reached, reason)."""
        return self.kernel.env.process(self._tracepath(self._port(src_port), dst_ip))

    def _ping(self, src: Port, dst_ip: str, size: int, df: bool) -> Generator[simpy.Event, Any,
                                                                               PingResult]:
        start = self.kernel.now
        ip_bytes = size + ICMP_ECHO_OVERHEAD
        if dst_ip == src.ip and self.plane.alive(src):  # answered by the guest's own stack
            return self._done("ping", src, dst_ip, PingResult(True, "reply", 0.0))
        if df and ip_bytes > self.spec.mtu:
            too_long = PingResult(False, message_too_long(self.spec.mtu), frag_mtu=self.spec.mtu)
            return self._done("ping", src, dst_ip, too_long)
        ip_bytes = min(ip_bytes, self.spec.mtu)  # without DF the guest fragments at its own MTU
        mac, why = yield from self._resolve(src, dst_ip)
        if mac is None:
            return self._done("ping", src, dst_ip, PingResult(False, why))
        request = yield from self.plane.transmit(src, Frame(src.mac, mac, ip_bytes, df, "echo"))
        target = self._answering(request, dst_ip, mac)
        result: PingResult
        if request.frag_needed is not None:
            result = PingResult(False, request.frag_needed, frag_mtu=request.frag_mtu)
        elif target is None:
            result = PingResult(False, "no reply: " + self.plane.explain(request, mac))
        else:
            reply = yield from self.plane.transmit(target,
                                                   Frame(mac, src.mac, ip_bytes, df, "echo-reply"))
            if src.name in reply.ports:
                return self._done("ping", src, dst_ip,
                                  PingResult(True, "reply", self.kernel.now - start))
            result = PingResult(False, "no reply (reply lost): "
                                + self.plane.explain(reply, src.mac))
        wait = start + self.ping_timeout_s - self.kernel.now
        if wait > 0:
            yield self.kernel.env.timeout(wait)
        return self._done("ping", src, dst_ip, result)

    def _resolve(self, src: Port, ip: str) -> Generator[simpy.Event, Any, tuple[str | None, str]]:
        """The kernel's neighbour lookup: a valid cache entry (REACHABLE, STALE, DELAY or
        PROBE: the kernel sends with it), else up to 3 broadcasts 1 s apart."""
        table = self.neighbours(src.name)
        cached = table.mac(ip)
        if cached is not None:
            table.output(ip, lambda _mac: None)  # counts as a use: STALE starts DELAY
            return cached, "cached"
        why = "no ARP reply"
        for _ in range(ARP_TRIES):
            started = self.kernel.now
            mac, why = yield from self._arp_once(src, ip)
            if mac is not None:
                table.reply(ip, mac)
                return mac, "resolved"
            wait = started + ARP_RETRANS_S - self.kernel.now
            if wait > 0:
                yield self.kernel.env.timeout(wait)
        return None, why

    def neighbours(self, port: str) -> NeighTable:
        """The ARP cache of the instance behind `port` (created on first use)."""
        table = self.tables.get(port)
        if table is None:
            table = self.tables[port] = NeighTable(
                self.kernel, f"{self.spec.name}/{port}",
                lambda ip, unicast: self._solicit(port, ip, unicast))
        return table

    def _solicit(self, port: str, ip: str, unicast: str | None) -> None:
        """One ARP request of the neighbour state machine; a reply updates the cache."""
        src = self.ports.get(port)
        if src is None:
            return

        def run() -> Generator[simpy.Event, Any, None]:
            mac, _why = yield from self._arp_once(src, ip, unicast)
            if mac is not None:
                self.neighbours(port).reply(ip, mac)

        self.kernel.env.process(run())

    def _arp_once(self, src: Port, ip: str, unicast: str | None = None,
                  ) -> Generator[simpy.Event, Any, tuple[str | None, str]]:
        request = yield from self.plane.transmit(src, Frame(
            src.mac, unicast or BROADCAST_MAC, ARP_PACKET, False, "arp-request"))
        owner = self._answering(request, ip, None)
        if owner is None:
            owner_mac = next((p.mac for p in self.ports.values() if p.ip == ip), BROADCAST_MAC)
            return None, "no ARP reply: " + self.plane.explain(request, owner_mac)
        self.neighbours(owner.name).heard(src.ip, src.mac, create=True)  # learns the asker
        reply = yield from self.plane.transmit(owner, Frame(owner.mac, src.mac, ARP_PACKET,
                                                            False, "arp-reply"))
        if src.name not in reply.ports:
            return None, "no ARP reply (reply lost): " + self.plane.explain(reply, src.mac)
        return owner.mac, "reply"

    def _arping(self, src: Port, ip: str) -> Generator[simpy.Event, Any, str | None]:
        """arping uses a packet socket: it neither reads nor fills the kernel's ARP cache."""
        for _ in range(ARP_TRIES):
            started = self.kernel.now
            mac, why = yield from self._arp_once(src, ip)
            self.kernel.log(self.component, "arping", src=src.name, dst=ip, mac=mac or "-",
                            why=why)
            if mac is not None:
                return mac
            wait = started + ARP_RETRANS_S - self.kernel.now
            if wait > 0:
                yield self.kernel.env.timeout(wait)
        return None

    def _tracepath(self, src: Port, ip: str) -> Generator[simpy.Event, Any, TracepathResult]:
        """Probe at the interface MTU, lower it on each 'frag needed', give up after 30 hops.

        A size blackhole never answers and never sends 'frag needed', so the result
        keeps pmtu at the overlay MTU with reached=False: tracepath's
        'no reply' lines ending in 'Too many hops: pmtu 1450'.
        """
        pmtu = self.spec.mtu
        mac, why = yield from self._resolve(src, ip)
        if mac is None:
            return self._done("tracepath", src, ip, TracepathResult(pmtu, False, why))
        reason = "no reply"
        for _ in range(TRACEPATH_MAX_HOPS):
            started = self.kernel.now
            probe = yield from self.plane.transmit(src, Frame(src.mac, mac, pmtu, True, "probe"))
            if probe.frag_needed is not None and probe.frag_mtu is not None:
                pmtu = probe.frag_mtu
                continue
            target = self._answering(probe, ip, mac)
            if target is not None:
                answer = yield from self.plane.transmit(
                    target, Frame(mac, src.mac, ICMP_ERROR_BYTES, False, "port-unreachable"))
                if src.name in answer.ports:
                    return self._done("tracepath", src, ip, TracepathResult(pmtu, True, "reached"))
                reason = "no reply: " + self.plane.explain(answer, src.mac)
            else:
                reason = "no reply: " + self.plane.explain(probe, mac)
            wait = started + ARP_RETRANS_S - self.kernel.now
            if wait > 0:
                yield self.kernel.env.timeout(wait)
        return self._done("tracepath", src, ip, TracepathResult(pmtu, False, reason))

    def _answering(self, delivery: Delivery, ip: str, mac: str | None) -> Port | None:
        for name in delivery.ports:
            port = self.ports.get(name)
            if port is not None and port.ip == ip and (mac is None or port.mac == mac):
                return port
        return None

    def _done(self, what: str, src: Port, dst: str, result: R) -> R:
        self.kernel.log(self.component, what, src=src.name, dst=dst, **{
            k: v for k, v in vars(result).items() if v is not None})
        return result

    # ------------------------------------------------------------ views

    def fdb(self, host: str) -> dict[str, str]:
        """`bridge fdb show dev vxlan0` without the all-zero entries: MAC -> remote VTEP."""
        return self.plane.vxlan_fdb(self._vtep(host))

    def flood(self, host: str) -> list[str]:
        """The all-zero MAC entries of `host`: the VTEPs that get broadcast and unknown unicast."""
        vtep = self._vtep(host)
        return list(vtep.flood) if vtep.device_up else []

    def bridge_fdb(self, host: str) -> dict[str, str]:
        """Learned entries of the host's bridge: MAC -> bridge port (`vxlan0` or a tap)."""
        return self.plane.bridge_fdb(self._vtep(host))

    def status(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "vni": self.spec.vni,
            "network": self.spec.network,
            "mtu": self.spec.mtu,
            "push_delay_s": self.push_delay_s,
            "reconverge_bound_s": self.reconverge_bound(),
            "ports": {p.name: {"mac": p.mac, "ip": p.ip, "host": p.host}
                      for p in sorted(self.ports.values(), key=lambda p: p.name)},
            "vteps": {v.host: {
                "address": v.address,
                "vxlan0": v.device_up,
                "stale": v.stale,
                "flood": self.flood(v.host),
                "fdb": self.fdb(v.host),
                "bridge": self.bridge_fdb(v.host),
                "taps": sorted(v.taps),
                "rx_frames": v.rx_frames,
            } for v in self.vteps.values()},
        }

    def _vtep(self, host: str) -> Vtep:
        try:
            return self.vteps[host]
        except KeyError:
            raise KeyError(f"host {host!r} has no VTEP on overlay {self.spec.name!r} (not on "
                           f"network {self.spec.network!r})") from None

    def _port(self, name: str) -> Port:
        try:
            return self.ports[name]
        except KeyError:
            raise KeyError(f"no port {name!r} on overlay {self.spec.name!r}") from None
