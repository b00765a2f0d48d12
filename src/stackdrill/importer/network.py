"""Underlay networks (one per subnet the hosts' .network files configure) and overlays
(the VXLAN devices of the .netdev files, grouped by VNI, with their bridge)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

from stackdrill.errors import Problem
from stackdrill.importer.draft import Draft, as_name
from stackdrill.importer.files import ConfigError
from stackdrill.importer.networkd import UnitFile, UnitKey
from stackdrill.importer.nova import Inventory
from stackdrill.importer.result import Source


@dataclass(frozen=True)
class Vxlan:
    host: str
    name: str
    vni: UnitKey
    local: UnitKey | None
    port: UnitKey | None
    mtu: UnitKey | None
    bridge: str | None


def _link_name(unit: UnitFile) -> str | None:
    key = unit.get("Match", "Name")
    return key.value if key else None


def bridges(draft: Draft) -> dict[tuple[str, str], str]:
    """(host, port device) -> the bridge it is enslaved to."""
    out = {}
    for host, files in draft.hosts.items():
        for unit in files.units:
            bridge = unit.get("Network", "Bridge")
            name = _link_name(unit)
            if bridge and name:
                out[(host, name)] = bridge.value
    return out


def networks(draft: Draft) -> None:
    overlay_bridges = set(bridges(draft).values())
    for host, files in sorted(draft.hosts.items()):
        for unit in files.units:
            link = _link_name(unit)
            if link is None or link in overlay_bridges or not unit.file.endswith(".network"):
                continue
            for addr in unit.all("Network", "Address"):
                _address(draft, host, link, unit, addr)
    nets = draft.data.get("networks", [])
    if nets and not any("management" in n["purposes"] for n in nets):
        nets[0]["purposes"].append("management")


def unused_networks(draft: Draft) -> None:
    """A subnet that nothing the lab models uses (no DRBD, corosync, VXLAN, iSCSI, no
    default route) is left out, and said so; the other networks' paths are renumbered."""
    nets = draft.data.get("networks", [])
    moved: dict[str, str] = {}
    kept: list[dict[str, Any]] = []
    for old, net in enumerate(nets):
        if net["purposes"]:
            moved[f"networks[{old}]"] = f"networks[{len(kept)}]"
            kept.append(net)
            continue
        source = draft.notes.mapped[f"networks[{old}].cidr"].source
        draft.notes.ignored(source, f"network {net['cidr']}", "no DRBD, corosync, VXLAN or "
                            "iSCSI traffic and no default route on it: not modelled")
    draft.data["networks"] = kept
    renamed = {}
    for path, mapped in draft.notes.mapped.items():
        head = path[:path.find("]") + 1]
        if not path.startswith("networks["):
            renamed[path] = mapped
        elif head in moved:
            new = moved[head] + path[len(head):]
            renamed[new] = replace(mapped, path=new)
    draft.notes.mapped = renamed


def _address(draft: Draft, host: str, link: str, unit: UnitFile, addr: UnitKey) -> None:
    try:
        iface = ipaddress.ip_interface(addr.value)
    except ValueError:
        raise ConfigError(str(addr.source), [Problem("", "Address= is not an address/prefix")]
                          ) from None
    cidr = str(iface.network)
    nets: list[dict[str, Any]] = draft.data.setdefault("networks", [])
    index = next((i for i, n in enumerate(nets) if n["cidr"] == cidr), None)
    if index is None:
        names = {n["name"] for n in nets}
        name = as_name(link)
        while name in names:
            name = as_name(f"{name}-{len(nets)}")
        item: dict[str, Any] = {"purposes": [], "addresses": {}}
        index, base = draft.append("networks", item)
        draft.put(f"{base}.name", item, "name", name, unit.keys[0].source)
        draft.put(f"{base}.cidr", item, "cidr", cidr, addr.source)
    net = nets[index]
    base = f"networks[{index}]"
    draft.put(f"{base}.addresses.{host}", net["addresses"], host, str(iface.ip), addr.source)
    mtu = unit.get("Link", "MTUBytes")
    if mtu is not None and mtu.value.isdigit() and len(mtu.value) < 6 and \
            int(mtu.value) < net.get("mtu", 1 << 30):
        draft.put(f"{base}.mtu", net, "mtu", int(mtu.value), mtu.source)
    if unit.get("Network", "Gateway") and "management" not in net["purposes"] and not any(
            "management" in n["purposes"] for n in draft.data["networks"]):
        net["purposes"].append("management")
    if unit.get("Network", "VXLAN"):
        draft.add_purpose(net["name"], "tunnel")


def _vxlans(draft: Draft) -> list[Vxlan]:
    enslaved = bridges(draft)
    out = []
    for host, files in sorted(draft.hosts.items()):
        for unit in files.units:
            kind = unit.get("NetDev", "Kind")
            name = unit.get("NetDev", "Name")
            vni = unit.get("VXLAN", "VNI") or unit.get("VXLAN", "Id")
            if kind is None or kind.value != "vxlan" or name is None or vni is None:
                continue
            bridge = enslaved.get((host, name.value))
            mtu = _bridge_mtu(files.units, bridge) or unit.get("NetDev", "MTUBytes")
            out.append(Vxlan(host, name.value, vni, unit.get("VXLAN", "Local"),
                             unit.get("VXLAN", "DestinationPort"), mtu, bridge))
    return out


def _bridge_mtu(units: tuple[UnitFile, ...], bridge: str | None) -> UnitKey | None:
    for unit in units:
        name = unit.get("NetDev", "Name")
        if bridge and name and name.value == bridge:
            return unit.get("NetDev", "MTUBytes")
    return None


def overlays(draft: Draft, inventory: Inventory | None) -> dict[str, str]:
    """The overlays; returns bridge name -> overlay name (for the guests' NICs)."""
    by_vni: dict[str, list[Vxlan]] = {}
    for vx in _vxlans(draft):
        by_vni.setdefault(vx.vni.value, []).append(vx)
    out: dict[str, str] = {}
    for vni, members in by_vni.items():
        name = _overlay(draft, vni, members, inventory)
        out.update({m.bridge: name for m in members if m.bridge})
    return out


def _overlay(draft: Draft, vni: str, members: list[Vxlan], inventory: Inventory | None) -> str:
    first = members[0]
    neutron = next((n for n in (inventory.networks if inventory else ())
                    if str(n.segmentation_id) == vni), None)
    bridge = first.bridge or first.name
    name = as_name(neutron.name if neutron else bridge.removeprefix("br-"))
    item: dict[str, Any] = {}
    _i, base = draft.append("overlays", item)
    draft.put(f"{base}.name", item, "name", name, first.vni.source)
    if not vni.isdigit() or len(vni) > 9:
        raise ConfigError(str(first.vni.source), [Problem("", "VNI= is not a number")])
    draft.put(f"{base}.vni", item, "vni", int(vni), first.vni.source)
    underlay = first.local and draft.network_of(first.local.value)
    if not underlay or not first.local:
        raise ConfigError(str(first.vni.source), [Problem("", f"VXLAN {first.name}: no Local= "
                          "address on a network the hosts configure")])
    draft.put(f"{base}.network", item, "network", underlay, first.local.source)
    mtus = [m.mtu for m in members if m.mtu and m.mtu.value.isdigit() and len(m.mtu.value) < 6]
    if mtus:
        low = min(mtus, key=lambda k: int(k.value))
        draft.put(f"{base}.mtu", item, "mtu", int(low.value), low.source)
    if first.port and first.port.value.isdigit() and len(first.port.value) < 6:
        draft.put(f"{base}.port", item, "port", int(first.port.value), first.port.source)
    cidr = _overlay_cidr(draft, first.bridge, inventory.network_cidr(neutron.name)
                         if inventory and neutron else None, first.vni.source)
    draft.put(f"{base}.cidr", item, "cidr", cidr[0], cidr[1])
    return name


def _overlay_cidr(draft: Draft, bridge: str | None, neutron: str | None,
                  where: Source) -> tuple[str, Source]:
    """Neutron's subnet where exported, else a host's own address on the bridge."""
    if neutron:
        return neutron, Source("nova-inventory.json", key="subnets")
    for files in draft.hosts.values():
        for unit in files.units:
            if _link_name(unit) == bridge and (addr := unit.get("Network", "Address")):
                try:
                    return str(ipaddress.ip_interface(addr.value).network), addr.source
                except ValueError:
                    break
    raise ConfigError(str(where), [Problem("", f"the overlay on {bridge}: no subnet known (an "
                      "Address= on the bridge, or a Neutron subnet in nova-inventory.json)")])
