"""The overlay's data plane: VTEPs, bridges with learning, frames hop by hop.

Split from overlay.py, which keeps the controller (control plane) and the operator's
checks; see its docstring for the model as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import simpy

from stackdrill.api.events import Note
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.network import Underlay
from stackdrill.overlay.model import (
    BROADCAST_MAC,
    ICMP_ECHO_OVERHEAD,
    VXLAN_OVERHEAD,
    PingResult,
    TracepathResult,
    blackhole,
    frag_needed,
    underlay_bytes,
)

log = logging.getLogger(__name__)
R = TypeVar("R", PingResult, TracepathResult)

ARP_TRIES = 3  # net.ipv4.neigh.*.mcast_solicit
ARP_RETRANS_S = 1.0  # net.ipv4.neigh.*.retrans_time_ms = 1000
TRACEPATH_MAX_HOPS = 30
ICMP_ERROR_BYTES = 56 + ICMP_ECHO_OVERHEAD  # tracepath's 'port unreachable' answer, small


VXLAN_DEV = "vxlan0"
BRIDGE_AGEING_S = 300.0  # bridge ageing_time default
VXLAN_AGEING_S = 300.0  # vxlan FDB_AGE_DEFAULT for learned (non-static) entries


@dataclass
class Port:
    """An instance's port: MAC, IP and the host whose bridge holds its tap (its ARP cache is
    the overlay's NeighTable of the same name)."""

    name: str
    mac: str
    ip: str
    host: str


@dataclass
class Vtep:
    """One host's bridge + vxlan0: the tables a `bridge fdb show` would list."""

    host: str
    address: str
    mtu: int = 65535  # vxlan0's own MTU, as the kernel set it at creation
    stale: bool = False  # the controller has stopped updating this host
    fault_down: bool = False  # vxlan0 deleted by a fault
    present: bool = True  # False while the host is off (everything volatile is gone)
    flood: list[str] = field(default_factory=list)  # all-zero MAC entries: remote VTEPs
    static: dict[str, str] = field(default_factory=dict)  # MAC -> VTEP, `permanent`
    learned: dict[str, tuple[str, float]] = field(default_factory=dict)  # MAC -> (VTEP, seen)
    # `static` is what the controller wanted once its change list was this long (None: not
    # known, the whole FDB is compared at the next push)
    programmed: int | None = None
    bridge: dict[str, tuple[str, float]] = field(default_factory=dict)  # MAC -> (port, seen)
    # The instance ports on the bridge, replaced (never changed in place) by add_tap and
    # discard_tap, so that the sorted order the flood uses is computed once per change.
    taps: frozenset[str] = frozenset()
    rx_frames: int = 0  # encapsulated frames accepted by vxlan0
    _sorted: tuple[frozenset[str], tuple[str, ...]] = field(
        default=(frozenset(), ()), repr=False, compare=False)

    @property
    def device_up(self) -> bool:
        return self.present and not self.fault_down

    def add_tap(self, port: str) -> None:
        self.taps = self.taps | {port}

    def discard_tap(self, port: str) -> None:
        self.taps = self.taps - {port}

    def sorted_taps(self) -> tuple[str, ...]:
        """The taps in name order, the bridge's flood order. A broadcast reaches every VTEP
        (hosts x instances copies at bring-up): each copy sorting the taps again made the
        flood cost grow with the lab on top of its copies."""
        taps, order = self._sorted
        if taps is not self.taps:
            order = tuple(sorted(self.taps))
            self._sorted = (self.taps, order)
        return order


@dataclass(frozen=True)
class Frame:
    src_mac: str
    dst_mac: str
    ip_bytes: int  # overlay packet size (IP packet, or the ARP payload)
    df: bool
    what: str


@dataclass
class Delivery:
    """Where one frame ended up: ports it reached, and notes on every copy that was dropped.

    A note is keyed by the host its copy was heading to (None: on the sender's side),
    so a failed check can name the drop on the way to the right host.
    """

    ports: list[str] = field(default_factory=list)
    notes: list[tuple[str | None, str]] = field(default_factory=list)
    frag_needed: str | None = None
    frag_mtu: int | None = None


class DataPlane:
    """Bridges, vxlan devices and the underlay crossing; no controller logic in here."""

    def __init__(self, kernel: Kernel, underlay: Underlay, network: str,
                 hosts: dict[str, SimHost], vteps: dict[str, Vtep], ports: dict[str, Port], *,
                 learning: bool, component: str) -> None:
        self.kernel = kernel
        self.underlay = underlay
        self.network = network
        self.hosts = hosts
        self.vteps = vteps
        self.ports = ports
        self.learning = learning
        self.component = component
        self.by_address = {v.address: v for v in vteps.values()}

    def alive(self, port: Port) -> bool:
        vtep = self.vteps.get(port.host)
        return vtep is not None and port.name in vtep.taps and self.hosts[port.host].up

    # ---------------------------------------------------------------- frames

    def transmit(self, port: Port, frame: Frame) -> Generator[simpy.Event, Any, Delivery]:
        """Send from an instance port; returns once the last copy has arrived (or was lost)."""
        out = Delivery()
        if not self.alive(port):
            out.notes.append((None, f"port {port.name} is not running on host {port.host}"))
            return out
        vtep = self.vteps[port.host]
        self._learn(vtep, frame.src_mac, port.name)
        copies: list[tuple[Vtep, float]] = []
        for bport in self._forward(vtep, frame.dst_mac, ingress=port.name):
            if bport == VXLAN_DEV:
                copies += self._encap(vtep, frame, out)
            else:
                out.ports.append(bport)
        arrivals: dict[float, list[Vtep]] = {}  # delay -> peers, in the order sent
        for peer, delay in copies:
            arrivals.setdefault(delay, []).append(peer)
        for delay, peers in arrivals.items():
            self.kernel.call_later(delay, partial(self._arrive, peers, vtep, frame, out))
        yield self.kernel.env.timeout(max(arrivals, default=0.0))
        return out

    def _arrive(self, peers: list[Vtep], src: Vtep, frame: Frame, out: Delivery) -> None:
        """The copies that reach their VTEPs at one instant, in the order they were sent.

        One event for them all (a broadcast reaches every VTEP: hosts x instances events
        otherwise): one event per copy, scheduled back to back, had consecutive places in
        the event order at that instant, and `_decap` schedules nothing, so nothing else
        ran between them and the trace is the same."""
        for peer in peers:
            self._decap(peer, src, frame, out)

    def _forward(self, vtep: Vtep, dst: str, ingress: str) -> Sequence[str]:
        """Bridge forwarding: a learned port, or flood; never back out of the ingress port."""
        if dst != BROADCAST_MAC:
            entry = self._bridge_entry(vtep, dst)
            if entry is not None:
                return [] if entry == ingress else [entry]
        if ingress == VXLAN_DEV:  # not a tap: every tap, and not back into the tunnel
            return vtep.sorted_taps()
        return [*(t for t in vtep.sorted_taps() if t != ingress), VXLAN_DEV]

    def _encap(self, vtep: Vtep, frame: Frame, out: Delivery) -> list[tuple[Vtep, float]]:
        """vxlan0 transmit: a MAC entry gives one VTEP, else the all-zero list (head-end copies)."""
        host, dst = vtep.host, frame.dst_mac
        if not vtep.device_up:
            self._drop(out, None, host, frame, f"tunnel endpoint vxlan0 on host {host} is down")
            return []
        if frame.ip_bytes > vtep.mtu:
            # br_forward.c is_skb_forwardable: a frame longer than the egress port's MTU is
            # freed without a word (no ICMP from a bridge): a blackhole for full-size frames
            self._drop(out, None, host, frame, f"bridge on host {host} drops a "
                       f"{frame.ip_bytes}-byte frame: vxlan0's MTU is {vtep.mtu} (the underlay's "
                       "MTU - 50)")
            return []
        targets = list(vtep.flood)
        if dst != BROADCAST_MAC:
            addr = vtep.static.get(dst) or self._learned_entry(vtep, dst)
            if addr is not None:
                targets = [addr]
                owner = next((p for p in self.ports.values() if p.mac == dst), None)
                peer = self.by_address.get(addr)
                if owner is not None and peer is not None and peer.host != owner.host:
                    out.notes.append((None, f"FDB on host {host} sends {dst} to VTEP {addr} "
                                            f"(host {peer.host}) but the controller has it on "
                                            f"host {owner.host}"
                                            + (" (stale FDB)" if vtep.stale else "")))
        if not targets:
            what = ("broadcast: vxlan0 has no all-zero flood entry" if dst == BROADCAST_MAC
                    else f"{dst}: vxlan0 has neither its MAC nor an all-zero flood entry")
            self._drop(out, None, host, frame, f"no forwarding entry on host {host} for {what}")
            return []
        copies: list[tuple[Vtep, float]] = []
        for addr in targets:
            peer = self.by_address.get(addr)
            if peer is None:
                self._drop(out, None, host, frame, f"VTEP {addr} is not on the underlay")
                continue
            delay = self._cross(vtep, peer, frame, out)
            if delay is not None:
                copies.append((peer, delay))
        return copies

    def _cross(self, src: Vtep, dst: Vtep, frame: Frame, out: Delivery) -> float | None:
        """The encapsulated frame on the underlay: local PMTU check, path, size, loss."""
        a, b, net = src.host, dst.host, self.network
        wire = underlay_bytes(frame.ip_bytes)
        local = self.underlay.link_mtu(a, net)
        if wire > local:
            if frame.df:
                # Linux >= 5.9 vxlan (skb_tunnel_check_pmtu, bridged): ICMP 'frag needed'
                # back to the inner sender, sized to the local route's MTU.
                mtu = local - VXLAN_OVERHEAD
                out.frag_needed = (frag_needed(mtu) + f" from the local VTEP: host {a}'s "
                                   f"underlay link has MTU {local}")
                out.frag_mtu = mtu
                self._drop(out, None, a, frame, out.frag_needed, note=False)
                return None
            wire = local  # vxlan's outer DF is unset by default: the outer packet is fragmented
        if not self.underlay.connected(a, b, net):
            peer = self.hosts[b]
            why = f"host {b} is {peer.power.value}" if not peer.up else f"no path {a} -> {b}"
            self._drop(out, b, a, frame, f"underlay {net}: {why}")
            return None
        path = self.underlay.path_mtu(a, b, net)
        if wire > path:
            self._drop(out, b, a, frame, blackhole(wire, path))
            return None
        delay = self.underlay.transit(a, b, net, wire)  # connected and fits: checked above
        if delay is None:
            self._drop(out, b, a, frame, f"lost on underlay {net} {a} -> {b} (packet loss)")
        return delay

    def _decap(self, vtep: Vtep, src: Vtep, frame: Frame, out: Delivery) -> None:
        """vxlan0 receive at `vtep`, at arrival time: snoop, then the bridge."""
        host, dst = vtep.host, frame.dst_mac
        if not self.hosts[host].up:
            self._drop(out, host, host, frame, f"host {host} is not running")
            return
        if not vtep.device_up:
            self._drop(out, host, host, frame, f"tunnel endpoint vxlan0 on host {host} is down: "
                       f"encapsulated frame from host {src.host} discarded")
            return
        if self.learning:
            static = vtep.static.get(frame.src_mac)
            if static is not None and static != src.address:
                # vxlan_snoop(): "Don't migrate static entries, drop packets".
                self._drop(out, host, host, frame, f"vxlan0 on host {host} drops frames from "
                           f"{frame.src_mac} via {src.address}: its static FDB entry points to "
                           f"{static}")
                return
            if static is None:
                old = vtep.learned.get(frame.src_mac)
                vtep.learned[frame.src_mac] = (src.address, self.kernel.now)
                if old is None or old[0] != src.address:
                    self.kernel.log(self.component, "vxlan-learn", host=host,
                                    mac=frame.src_mac, dst=src.address)
        vtep.rx_frames += 1
        self._learn(vtep, frame.src_mac, VXLAN_DEV)
        ports = self._forward(vtep, dst, ingress=VXLAN_DEV)
        out.ports.extend(ports)
        if dst == BROADCAST_MAC:
            return
        here = any(self.ports[t].mac == dst for t in vtep.taps if t in self.ports)
        if not ports and here:
            self._drop(out, host, host, frame, f"bridge on host {host} still has {dst} learned "
                       f"behind {VXLAN_DEV} (from before the move) and will not send it back "
                       "out; it needs a frame from the instance, e.g. a gratuitous ARP")
        elif not here:
            out.notes.append((host, f"{dst} is not on host {host}"))

    def _drop(self, out: Delivery, key: str | None, host: str, frame: Frame, why: str, *,
              note: bool = True) -> None:
        if note:
            out.notes.append((key, why))
        self.kernel.log(self.component, "drop", host=host, frame=frame.what, dst=frame.dst_mac,
                        why=why)

    def explain(self, delivery: Delivery, dst_mac: str) -> str:
        """The drops on the way to where the controller says `dst_mac` lives, else all of them."""
        owner = next((p for p in self.ports.values() if p.mac == dst_mac), None)
        notes = [t for k, t in delivery.notes if owner is None or k in (None, owner.host)]
        notes = notes or [t for _, t in delivery.notes]
        if not notes and owner is not None and not self.alive(owner):
            notes = [f"port {owner.name} is not running on host {owner.host}"]
        return "; ".join(dict.fromkeys(notes)) or f"{dst_mac} was not reached"

    # ---------------------------------------------------------------- tables

    def _learn(self, vtep: Vtep, mac: str, port: str) -> None:
        """The bridge learns `mac` on `port`; a new or moved entry is traced. Every VTEP
        learns every instance's MAC from its announcement (hosts x instances lines), so
        the line's fields are given sorted and plain, as `Kernel.log` would make them."""
        old = vtep.bridge.get(mac)
        vtep.bridge[mac] = (port, self.kernel.now)
        if old is None or old[0] != port:
            self.kernel.emit(Note(self.component, "bridge-learn", (
                ("host", vtep.host), ("mac", mac), ("port", port),
                ("was", old[0] if old else "-"))))

    def _bridge_entry(self, vtep: Vtep, mac: str) -> str | None:
        entry = vtep.bridge.get(mac)
        if entry is None:
            return None
        if self.kernel.now - entry[1] > BRIDGE_AGEING_S:
            del vtep.bridge[mac]
            self.kernel.log(self.component, "bridge-aged", host=vtep.host, mac=mac, port=entry[0])
            return None
        return entry[0]

    def _learned_entry(self, vtep: Vtep, mac: str) -> str | None:
        entry = vtep.learned.get(mac)
        if entry is None:
            return None
        if self.kernel.now - entry[1] > VXLAN_AGEING_S:
            del vtep.learned[mac]
            self.kernel.log(self.component, "vxlan-aged", host=vtep.host, mac=mac)
            return None
        return entry[0]

    def link_up(self, vtep: Vtep, port: str, mac: str) -> None:
        """A guest's interface comes up on the bridge and its own stack sends at once (IPv6:
        the MLD reports and DAD of its link-local address, net/ipv6/addrconf.c), with or
        without a gratuitous ARP: its bridge learns the MAC on the tap. Recorded on netns
        (vxlan-move-*-observer-on-new-host): the destination bridge had the MAC on the tap
        by the time the plug returned, with announcements off. Whether those multicast
        frames also re-teach remote bridges (multicast snooping) is not modelled."""
        self._learn(vtep, mac, port)

    def remove_tap(self, vtep: Vtep, port: str, why: str) -> None:
        """A tap leaves the bridge; the bridge flushes what it learned on it."""
        if port not in vtep.taps:
            return
        vtep.discard_tap(port)
        for mac in [m for m, (p, _) in vtep.bridge.items() if p == port]:
            del vtep.bridge[mac]
        self.kernel.log(self.component, "tap-removed", host=vtep.host, port=port, why=why)

    def drop_device(self, vtep: Vtep, *, keep_static: bool = False) -> None:
        """vxlan0 is gone (or down: `keep_static`, its permanent entries stay): its FDB goes
        with it and the bridge forgets what it learned on it."""
        if not keep_static:
            vtep.flood, vtep.static, vtep.programmed = [], {}, None
        vtep.learned = {}
        for mac in [m for m, (p, _) in vtep.bridge.items() if p == VXLAN_DEV]:
            del vtep.bridge[mac]

    def vxlan_fdb(self, vtep: Vtep) -> dict[str, str]:
        if not vtep.device_up:
            return {}
        now = self.kernel.now
        fresh = {m: a for m, (a, t) in vtep.learned.items() if now - t <= VXLAN_AGEING_S}
        return dict(sorted({**fresh, **vtep.static}.items()))

    def bridge_fdb(self, vtep: Vtep) -> dict[str, str]:
        now = self.kernel.now
        return dict(sorted((m, p) for m, (p, t) in vtep.bridge.items()
                           if now - t <= BRIDGE_AGEING_S))
