"""The netns backend's overlay data plane: pyroute2 netlink into each host's namespace.

The controller (stackdrill.overlay) decides what every FDB holds; this plane creates each
host's VXLAN device and bridge with the lab's interface names and changes FDB entries one
netlink message at a time. A fresh device is programmed in one `bridge -batch` instead:
pyroute2 costs ~0.7 ms per entry here, and a full mesh has hosts² entries.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable
from typing import Any

from pyroute2 import NetlinkError

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.names import LabNames
from stackdrill.overlay.controller import OverlayController
from stackdrill.overlay.plane import (
    Entry,
    FdbPlane,
    PlaneError,
    Tolerated,
    Verb,
    VtepDevices,
    VtepNaming,
    VtepSpec,
)
from stackdrill.overlay.plane import batch as batch_lines
from stackdrill.topology import Topology

ERRNO: dict[Tolerated, int] = {"exists": errno.EEXIST, "missing": errno.ENOENT}


def lab_naming(names: LabNames, topology: Topology) -> VtepNaming:
    """Device names by topology position (interface names are short: IFNAMSIZ)."""
    host_index = {h.name: i for i, h in enumerate(topology.hosts)}
    net_index = {n.name: i for i, n in enumerate(topology.networks)}
    overlays = {o.name: (i, o.network) for i, o in enumerate(topology.overlays)}

    def devices(host: str, overlay: str) -> VtepDevices:
        o_idx, network = overlays[overlay]
        return VtepDevices(vxlan=names.vxlan_if(o_idx), bridge=names.overlay_bridge(o_idx),
                           underlay=names.underlay_if(net_index[network]),
                           bridge_mac=names.bridge_mac(o_idx, host_index[host]))

    return devices


class Pyroute2Plane(FdbPlane):
    """VTEPs and FDBs of a lab's host namespaces; `sock(ns)` is the lab's IPRoute there."""

    def __init__(self, names: LabNames, topology: Topology, sock: Callable[[str], Any]) -> None:
        super().__init__(lab_naming(names, topology))
        self.names = names
        self.sock = sock

    def _vx(self, host: str, overlay: str) -> tuple[Any, int]:
        ipr = self.sock(self.names.host_ns(host))
        found = ipr.link_lookup(ifname=self.devices(host, overlay).vxlan)
        if not found:
            raise PlaneError(f"host {host} has no VXLAN device for overlay {overlay}")
        return ipr, int(found[0])

    def create(self, host: str, spec: VtepSpec) -> None:
        dev = self.devices(host, spec.overlay)
        ipr = self.sock(self.names.host_ns(host))
        under = ipr.link_lookup(ifname=dev.underlay)[0]
        ipr.link("add", ifname=dev.vxlan, kind="vxlan", vxlan_id=spec.vni,
                 vxlan_local=spec.local, vxlan_port=spec.port, vxlan_link=under,
                 vxlan_learning=0, mtu=spec.mtu)
        ipr.link("add", ifname=dev.bridge, kind="bridge", br_stp_state=0,
                 br_forward_delay=0, mtu=spec.mtu, address=dev.bridge_mac)
        br = ipr.link_lookup(ifname=dev.bridge)[0]
        vx = ipr.link_lookup(ifname=dev.vxlan)[0]
        ipr.link("set", index=vx, master=br, state="up")
        ipr.link("set", index=br, state="up")
        ipr.addr("add", index=br, address=spec.address, prefixlen=spec.prefixlen)

    def dump(self, host: str, overlay: str) -> set[Entry]:
        ipr, vx = self._vx(host, overlay)
        out: set[Entry] = set()
        for msg in ipr.fdb("dump", ifindex=vx):
            if msg["ifindex"] != vx or msg.get_attr("NDA_DST") is None:
                continue  # another port's, or the bridge's own entry
            out.add((str(msg.get_attr("NDA_LLADDR")), str(msg.get_attr("NDA_DST"))))
        return out

    def change(self, host: str, overlay: str, verb: Verb, mac: str, dst: str,
               ok_if: Tolerated | None = None) -> None:
        ipr, vx = self._vx(host, overlay)
        try:
            ipr.fdb(verb, ifindex=vx, lladdr=mac, dst=dst)
        except NetlinkError as exc:
            if ok_if is None or exc.code != ERRNO[ok_if]:
                raise

    def bulk(self, host: str, overlay: str, entries: Iterable[Entry]) -> None:
        lines = batch_lines(self.devices(host, overlay).vxlan, entries)
        if lines:
            nsops.run(self.names.host_ns(host), ["bridge", "-batch", "-"], stdin=lines)


def lab_controller(names: LabNames, topology: Topology,
                   sock: Callable[[str], Any]) -> OverlayController:
    """The lab's overlay controller, programming its namespaces through pyroute2."""
    return OverlayController(topology, Pyroute2Plane(names, topology, sock))
