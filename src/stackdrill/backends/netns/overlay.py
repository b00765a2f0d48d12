"""The netns backend's overlay data plane: pyroute2 netlink into each host's namespace.

The controller (stackdrill.overlay) decides what every FDB holds; this plane creates each
host's VXLAN device and bridge with the lab's interface names and changes FDB entries one
netlink message at a time. A fresh device is programmed in one batch of netlink messages
instead (nlbatch.py): a round trip through IPRoute costs ~0.7 ms per entry here, and a
full mesh has hosts² entries. While the lab builds (`batched`), VTEPs and their FDBs go
into the lab's build batches, with the interface indexes those assign.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import NetlinkError

from stackdrill.backends.netns import nlbatch
from stackdrill.backends.netns.names import LabNames
from stackdrill.overlay.model import ZERO_MAC
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
        self._build: nlbatch.Build | None = None

    @contextmanager
    def batched(self, build: nlbatch.Build) -> Iterator[None]:
        """VTEPs created and programmed meanwhile are queued into `build`, whose sender
        sends them (the hosts' namespaces must be fresh: it assigns interface indexes)."""
        self._build = build
        try:
            yield
        finally:
            self._build = None

    def _vx(self, host: str, overlay: str) -> tuple[Any, int]:
        ipr = self.sock(self.names.host_ns(host))
        found = ipr.link_lookup(ifname=self.devices(host, overlay).vxlan)
        if not found:
            raise PlaneError(f"host {host} has no VXLAN device for overlay {overlay}")
        return ipr, int(found[0])

    def create(self, host: str, spec: VtepSpec) -> None:
        if self._build is not None:
            self._queue_create(self._build.batch(self.names.host_ns(host)), spec,
                               self.devices(host, spec.overlay))
            return
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

    @staticmethod
    def _queue_create(batch: nlbatch.Batch, spec: VtepSpec, dev: VtepDevices) -> None:
        """The bridge first, so that the VXLAN device is created on it and up."""
        bridge = batch.index(dev.bridge)
        batch.bridge(bridge, dev.bridge, mtu=spec.mtu, mac=dev.bridge_mac)
        batch.vxlan(batch.index(dev.vxlan), dev.vxlan, vni=spec.vni, local=spec.local,
                    port=spec.port, underlay=batch.index(dev.underlay), master=bridge,
                    mtu=spec.mtu)
        batch.address(bridge, spec.address, spec.prefixlen)

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
        """Every entry in one batch, sorted for a stable order; flood entries are
        appended (several remotes share the zero MAC)."""
        ns = self.names.host_ns(host)
        if self._build is not None:
            batch = self._build.batch(ns)
            vx = batch.index(self.devices(host, overlay).vxlan)
        else:
            batch = nlbatch.Batch(ns)
            vx = self._vx(host, overlay)[1]
        for mac, dst in sorted(entries):
            batch.fdb(vx, mac, dst, append=mac == ZERO_MAC)
        if self._build is None:
            nlbatch.send([batch])

