"""Real faults on the kernel, each with an exact undo.

Every inject records what it changed as a list of undo steps; heal runs them in reverse.
Partitions and loss are nftables tables named with the lab prefix inside the lab's own
host namespaces (the `nft` command: pyroute2's expression helpers cover too little).
Rate limits are tbf: egress on the host's side of the link, ingress through an ifb
device that the link's ingress qdisc redirects to (mirred). An MTU fault lowers the MTU
at the switch port (the middle of the path: frames above it vanish without ICMP) and,
because veth skips its MTU check for GSO packets, turns segmentation offloads off on
every sender on that network for as long as it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from stackdrill.api import FaultHealed, FaultInjected
from stackdrill.backends.netns import nsops, offloads
from stackdrill.errors import LabStateError, UnsupportedError
from stackdrill.faults import UNHEALABLE, Fault, fault_kinds
from stackdrill.faults.catalogue import (
    Cut,
    HostCrash,
    HostReboot,
    InstanceCrash,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    RateLimit,
    TunnelEndpointDown,
    UnderlayMtu,
    describe,
)

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

log = logging.getLogger(__name__)

Undo = Callable[[], None]
INGRESS = 0xFFFF0000  # the ingress qdisc's handle, ffff:
ETH_P_ALL = 0x0003  # linux/if_ether.h: `protocol all`


class FaultEngine:
    """Injects and heals faults of one lab; remembers exactly what each changed."""

    def __init__(self, lab: NetnsLab) -> None:
        self.lab = lab
        self.active: dict[Fault, list[Undo]] = {}
        self._serial = 0

    def inject(self, fault: Fault) -> None:
        """Traced only once the fault is known to be realisable here, as on every backend."""
        handler = HANDLERS.get(type(fault))
        if handler is None:
            raise UnsupportedError(f"the netns backend cannot realise {fault.kind}")
        if fault in self.active:
            raise ValueError(f"fault already in force: {fault}")
        self.lab.tracer.emit(FaultInjected(describe(fault)))
        undo: list[Undo] = []
        try:
            handler(self, fault, undo)
        except BaseException:
            _run_undo(undo)
            raise
        if fault.kind not in UNHEALABLE:  # a one-shot (a killed process) is not in force
            self.active[fault] = undo

    def heal(self, fault: Fault) -> None:
        if fault.kind in UNHEALABLE:  # nothing to undo, as on the simulator
            self.lab.tracer.emit(FaultHealed(describe(fault)))
            return
        undo = self.active.pop(fault, None)
        if undo is None:
            raise ValueError(f"fault not in force: {fault}")
        self.lab.tracer.emit(FaultHealed(describe(fault)))
        _run_undo(undo)

    def heal_all(self) -> None:
        for fault in list(reversed(self.active)):
            self.heal(fault)

    def _next(self, what: str) -> str:
        self._serial += 1
        return self.lab.names.nft_table(f"{what}{self._serial}")

    # ---------------------------------------------------------------- hosts

    def _inject_host_crash(self, fault: HostCrash, undo: list[Undo]) -> None:
        self.lab.power_off_host(fault.host)
        if fault.power_back:
            undo.append(lambda: self.lab.power_on_host(fault.host))

    def _inject_host_reboot(self, fault: HostReboot, undo: list[Undo]) -> None:
        self.lab.power_off_host(fault.host)
        self.lab.power_on_host(fault.host)  # comes back by itself; heal has nothing left

    def _inject_instance_crash(self, fault: InstanceCrash, undo: list[Undo]) -> None:
        """SIGKILL of the workload process the lab started for the instance; a crash has no
        undo (heal is refused by the drill's validation; here it has nothing to run)."""
        if not self.lab.instances.crash(fault.instance):
            raise LabStateError(f"{describe(fault)}: {fault.instance} runs on no host: "
                                "there is no process to kill")

    # ---------------------------------------------------------------- links

    def _inject_link_down(self, fault: LinkDown, undo: list[Undo]) -> None:
        lk = self.lab.underlay.link(fault.host, fault.network)
        self.lab.set_link(lk, False, reason="link_down")

        def restore() -> None:
            self.lab.set_link(lk, True, reason="link_down")

        undo.append(restore)

    def _inject_partition(self, fault: Partition, undo: list[Undo]) -> None:
        nets = [fault.network] if fault.network else [n.name for n in self.lab.topology.networks]
        for g_idx, group in enumerate(fault.groups):
            others = {h for j, g in enumerate(fault.groups) if j != g_idx for h in g}
            addrs = sorted({lk.address for (h, n), lk in self.lab.underlay.links.items()
                            if h in others and n in nets})
            if not addrs:
                continue
            for host in group:
                table = self._next("part")
                elements = ", ".join(addrs)
                rules = (f"table ip {table} {{\n"
                         f"  chain inbound {{ type filter hook input priority -10; "
                         f"ip saddr {{ {elements} }} drop; }}\n"
                         f"  chain outbound {{ type filter hook output priority -10; "
                         f"ip daddr {{ {elements} }} drop; }}\n}}\n")
                self._nft_add(self.lab.names.host_ns(host), table, rules, undo)

    def _inject_cut(self, fault: Cut, undo: list[Undo]) -> None:
        """Each dropped direction is one rule on its sender's output hook: what the sender
        sends to the receiver's addresses (VXLAN frames included) is dropped; what the
        receiver sends back still arrives."""
        nets = [fault.network] if fault.network else [n.name for n in self.lab.topology.networks]
        for sender, receiver in fault.directed():
            addrs = sorted({lk.address for (h, n), lk in self.lab.underlay.links.items()
                            if h == receiver and n in nets})
            if not addrs:
                continue
            table = self._next("cut")
            rules = (f"table ip {table} {{\n"
                     f"  chain outbound {{ type filter hook output priority -10; "
                     f"ip daddr {{ {', '.join(addrs)} }} drop; }}\n}}\n")
            self._nft_add(self.lab.names.host_ns(sender), table, rules, undo)

    def _inject_packet_loss(self, fault: PacketLoss, undo: list[Undo]) -> None:
        lk = self.lab.underlay.link(fault.host, fault.network)
        per_10k = max(1, min(10000, round(fault.probability * 10000)))
        table = self._next("loss")
        rule = ("drop" if per_10k >= 10000
                else f"numgen random mod 10000 < {per_10k} drop")
        # the inet output hook: the netdev egress hook counted but did not drop on this
        # kernel's veth. Everything a host sends (VXLAN included) is generated locally.
        rules = (f"table inet {table} {{\n"
                 f"  chain outbound {{ type filter hook output priority 0; "
                 f"oifname \"{lk.ifname}\" {rule}; }}\n}}\n")
        self._nft_add(lk.ns, table, rules, undo)

    def _nft_add(self, ns: str, table: str, rules: str, undo: list[Undo]) -> None:
        family = rules.split()[1]
        nsops.run(ns, ["nft", "-f", "-"], stdin=rules)
        log.info("nft table %s %s added in %s", family, table, ns)

        def remove() -> None:
            nsops.run(ns, ["nft", "delete", "table", family, table], check=False)

        undo.append(remove)

    def _inject_rate_limit(self, fault: RateLimit, undo: list[Undo]) -> None:
        lk = self.lab.underlay.link(fault.host, fault.network)
        ipr = self.lab.sock(lk.ns)
        idx = ipr.link_lookup(ifname=lk.ifname)[0]
        rate = f"{max(1, round(fault.mbit * 1000))}kbit"
        burst = max(16384, int(fault.mbit * 1e6 / 8 / 100))  # 10 ms of data, at least 16 KiB
        ipr.tc("add", "tbf", idx, 0x10000, rate=rate, burst=burst, latency="100ms")
        undo.append(lambda: ipr.tc("del", index=idx, handle=0x10000, root=True))
        ifb = self.lab.names.ifb(lk.net_index)
        ipr.link("add", ifname=ifb, kind="ifb")
        undo.append(lambda: ipr.link("del", index=ipr.link_lookup(ifname=ifb)[0]))
        ifb_idx = ipr.link_lookup(ifname=ifb)[0]
        ipr.link("set", index=ifb_idx, state="up")
        ipr.tc("add", "tbf", ifb_idx, 0x10000, rate=rate, burst=burst, latency="100ms")
        ipr.tc("add", "ingress", idx)  # handle ffff:

        def no_ingress() -> None:  # best effort, as `tc qdisc del` was: its filter goes too
            from pyroute2 import NetlinkError

            with suppress(NetlinkError):
                ipr.tc("del", "ingress", idx)

        undo.append(no_ingress)
        # `tc filter add ... parent ffff: protocol all u32 match u32 0 0 action mirred
        # egress redirect dev IFB`: every frame the link receives leaves through the ifb
        ipr.tc("add-filter", "u32", idx, parent=INGRESS, protocol=ETH_P_ALL,
               keys=["0x0/0x0+0"], target=0,
               action={"kind": "mirred", "direction": "egress", "action": "redirect",
                       "ifindex": ifb_idx})

    def _inject_underlay_mtu(self, fault: UnderlayMtu, undo: list[Undo]) -> None:
        lk = self.lab.underlay.link(fault.host, fault.network)
        sw = self.lab.sock(self.lab.names.switch_ns)
        old = self.lab.underlay.get_mtu(sw, lk.port)
        self.lab.underlay.set_mtu(sw, lk.port, fault.mtu)
        undo.append(lambda: self.lab.underlay.set_mtu(sw, lk.port, old))
        for other in self.lab.underlay.links.values():
            if other.network == fault.network:
                self._offloads_off(other.ns, other.ifname, undo)

    def _offloads_off(self, ns: str, ifname: str, undo: list[Undo]) -> None:
        on = offloads.segmentation_on(ns, ifname)
        if not on:
            return
        offloads.set_features(ns, ifname, on, False)

        def restore() -> None:  # best effort, as `ethtool -K` was: the link may be gone
            try:
                offloads.set_features(ns, ifname, on, True)
            except OSError as exc:
                log.warning("offloads of %s in %s not restored: %s", ifname, ns, exc)

        undo.append(restore)

    # ---------------------------------------------------------------- overlay

    def _inject_overlay_fdb_stale(self, fault: OverlayFdbStale, undo: list[Undo]) -> None:
        self.lab.overlay.freeze(fault.overlay, fault.host)
        undo.append(lambda: self.lab.overlay.thaw(fault.overlay, fault.host))

    def _inject_tunnel_endpoint_down(self, fault: TunnelEndpointDown, undo: list[Undo]) -> None:
        state = self.lab.overlay.overlays[fault.overlay]
        ipr = self.lab.sock(self.lab.names.host_ns(fault.host))
        vx = ipr.link_lookup(ifname=self.lab.names.vxlan_if(state.index))[0]
        ipr.link("set", index=vx, state="down")

        def restore() -> None:
            ipr.link("set", index=vx, state="up")
            self.lab.overlay.sync(fault.overlay, fault.host, force=True)

        undo.append(restore)


Handler = Callable[[FaultEngine, Any, list[Undo]], None]
# The faults this backend realises, each with its inject (which records its undo steps).
# The backend's declared fault support is derived from this table.
HANDLERS: dict[type[Fault], Handler] = {
    HostCrash: FaultEngine._inject_host_crash,
    HostReboot: FaultEngine._inject_host_reboot,
    InstanceCrash: FaultEngine._inject_instance_crash,
    LinkDown: FaultEngine._inject_link_down,
    Partition: FaultEngine._inject_partition,
    Cut: FaultEngine._inject_cut,
    PacketLoss: FaultEngine._inject_packet_loss,
    RateLimit: FaultEngine._inject_rate_limit,
    UnderlayMtu: FaultEngine._inject_underlay_mtu,
    OverlayFdbStale: FaultEngine._inject_overlay_fdb_stale,
    TunnelEndpointDown: FaultEngine._inject_tunnel_endpoint_down,
}
FAULT_KINDS = fault_kinds(HANDLERS)


def _run_undo(undo: list[Undo]) -> None:
    errors = []
    for step in reversed(undo):
        try:
            step()
        except Exception as exc:  # keep undoing the rest, then report
            log.exception("undo step failed")
            errors.append(exc)
    if errors:
        raise RuntimeError(f"{len(errors)} undo step(s) failed: {errors[0]}")
