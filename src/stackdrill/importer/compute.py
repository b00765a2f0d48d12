"""Instances (libvirt domains, placed and named by the Nova export where there is one),
their flavors, volumes and overlay ports."""

from __future__ import annotations

from typing import Any

from stackdrill.importer.draft import NAME, Draft, as_name
from stackdrill.importer.libvirt_xml import DiskKind, Domain
from stackdrill.importer.nova import Inventory, Server
from stackdrill.importer.result import Source

INVENTORY = "nova-inventory.json"


def cinder_names(inventory: Inventory | None) -> dict[str, str]:
    """LV name `volume-<id>` -> the Cinder volume's name (when it is a valid name)."""
    out = {}
    for vol in inventory.volumes if inventory else ():
        if vol.name and NAME.fullmatch(vol.name):
            out[f"volume-{vol.id}"] = vol.name
    return out


def instances(draft: Draft, inventory: Inventory | None, overlay_of: dict[str, str]) -> None:
    servers = {s.instance_name: s for s in (inventory.servers if inventory else ())
               if s.instance_name}
    placed: set[str] = set()
    for host, files in draft.hosts.items():
        for dom in files.domains:
            server = servers.get(dom.name)
            if server is not None:
                placed.add(server.id)
                if server.host and server.host != host:
                    draft.notes.wrong(dom.source, dom.name, f"Nova places it on {server.host}, "
                                      f"its domain XML is on {host}; {host} is used")
            _instance(draft, host, dom, server, inventory, overlay_of)
    for i, server in enumerate(inventory.servers if inventory else ()):
        if server.id not in placed:
            draft.notes.wrong(Source(INVENTORY, key=f"servers[{i}]"), server.name[:40],
                              "no domain XML of it on any host: left out")


def _instance(draft: Draft, host: str, dom: Domain, server: Server | None,
              inventory: Inventory | None, overlay_of: dict[str, str]) -> None:
    item: dict[str, Any] = {}
    _i, base = draft.append("instances", item)
    name = server.name if server else dom.nova_name or dom.name
    draft.put(f"{base}.name", item, "name", as_name(name) if not NAME.fullmatch(name) else name,
              dom.source)
    draft.put(f"{base}.host", item, "host", host, dom.source)
    draft.roles.setdefault(host, set()).add("compute")
    _flavor(draft, item, base, dom, server)
    _volumes(draft, item, base, dom, inventory)
    _port(draft, item, base, dom, server, overlay_of)


def _flavor(draft: Draft, item: dict[str, Any], base: str, dom: Domain,
            server: Server | None) -> None:
    flavors: dict[str, Any] = draft.data.setdefault("flavors", {})
    if server is not None:
        name, vcpus, ram = server.flavor.original_name, server.flavor.vcpus, server.flavor.ram
    else:
        name = dom.nova_flavor or f"{dom.vcpus}vcpu-{dom.memory_mib}mb"
        vcpus, ram = dom.vcpus, dom.memory_mib
    if name not in flavors:
        draft.put(f"flavors.{name}", flavors, name, {"vcpus": vcpus, "ram_mb": ram}, dom.source)
    draft.put(f"{base}.flavor", item, "flavor", name, dom.source)


def _volumes(draft: Draft, item: dict[str, Any], base: str, dom: Domain,
             inventory: Inventory | None) -> None:
    by_lv = {(v["vg"], v["_lv"]): v["name"] for v in draft.data.get("volumes", [])}
    names = cinder_names(inventory)
    attached = []
    for disk in dom.disks:
        vol: str | None = None
        if disk.kind is DiskKind.LV:
            vol = by_lv.get((disk.vg or "", disk.lv or ""))
        elif disk.kind is DiskKind.ISCSI and disk.volume_id:
            lv = f"volume-{disk.volume_id}"
            vol = next((v for (_vg, lv_name), v in by_lv.items() if lv_name == lv),
                       names.get(lv))
        if disk.portal and (net := draft.network_of(disk.portal)):
            draft.add_purpose(net, "storage")
        if vol is not None:
            attached.append(vol)
        elif disk.kind is DiskKind.FILE:
            draft.notes.ignored(disk.source, disk.path[:60], "an image file: the lab models "
                                "volumes, not instances' root images")
        else:
            draft.notes.wrong(disk.source, disk.path[:60], f"a {disk.kind.value} disk the "
                              "importer found in no VG's report: its data is not modelled")
    if attached:
        draft.put(f"{base}.volumes", item, "volumes", attached, dom.source)


def _port(draft: Draft, item: dict[str, Any], base: str, dom: Domain, server: Server | None,
          overlay_of: dict[str, str]) -> None:
    for nic in dom.nics:
        overlay = overlay_of.get(nic.bridge or "")
        if overlay is None:
            draft.notes.ignored(nic.source, f"interface {nic.mac}", f"on {nic.bridge!s:.30}, "
                                "not an overlay bridge: the lab models overlay ports only")
            continue
        if "overlay" in item:
            draft.notes.differently(nic.source, f"interface {nic.mac}", "a second overlay "
                                    "port: the lab models one per instance")
            continue
        ip, src = _ip(draft, nic.mac, dom, server)
        if ip is None:
            draft.notes.wrong(nic.source, f"interface {nic.mac}", "no IP known for it (Nova "
                              "addresses, Nova's domain metadata or a dnsmasq dhcp-host)")
            continue
        draft.put(f"{base}.overlay", item, "overlay", overlay, nic.source)
        draft.put(f"{base}.mac", item, "mac", nic.mac, nic.source)
        draft.put(f"{base}.ip", item, "ip", ip, src)


def _ip(draft: Draft, mac: str, dom: Domain, server: Server | None
        ) -> tuple[str | None, Source]:
    if server is not None:
        for net, addrs in server.addresses.items():
            for addr in addrs:
                if (addr.mac or "").lower() == mac and addr.version == 4:
                    return addr.addr, Source(INVENTORY, key=f"{server.name}.addresses.{net}")
    if dom.nova_ips:
        return dom.nova_ips[0], Source(dom.source.file, key="metadata/nova:ports")
    for files in draft.hosts.values():
        for fixed in files.fixed:
            if fixed.mac == mac:
                return fixed.ip, fixed.source
    return None, dom.source
