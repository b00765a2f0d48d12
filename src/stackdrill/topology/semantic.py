"""Checks of meaning that types alone cannot express: references, uniqueness, capacity.

What the real software refuses or the lab cannot build is an error here. What it runs and
regrets later (an overlay MTU above what the underlay carries, a second DRBD Primary the
config does not allow) is a danger instead: `stackdrill.dangers`, `stackdrill lint`."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator

from stackdrill.errors import Problem
from stackdrill.topology.model import DrbdResource, Host, Instance, Network, Overlay, Role, Topology

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 (the inner Ethernet header)


def semantic_problems(topo: Topology) -> list[Problem]:
    """Every problem found, in file order, so a user fixes them in one pass."""
    problems: list[Problem] = []
    problems += _duplicates(topo)
    problems += _networks(topo)
    problems += _overlays(topo)
    problems += _drbd(topo)
    problems += _volume_groups(topo)
    problems += _clusters(topo)
    problems += _volumes(topo)
    problems += _instances(topo)
    problems += _capacity(topo)
    return problems


def _dupes(values: Iterable[tuple[str, str]], what: str) -> list[Problem]:
    """values: (path, value); report every occurrence after the first."""
    seen: dict[str, str] = {}
    out = []
    for path, value in values:
        if value in seen:
            out.append(Problem(path, f"duplicate {what} {value!r} (first at {seen[value]})"))
        else:
            seen[value] = path
    return out


def _duplicates(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    for field in ("hosts", "networks", "overlays", "drbd", "volume_groups", "clusters", "volumes",
                  "instances"):
        items = getattr(topo, field)
        out += _dupes(((f"{field}[{i}].name", it.name) for i, it in enumerate(items)), "name")
    macs = ((f"instances[{i}].mac", it.mac) for i, it in enumerate(topo.instances) if it.mac)
    out += _dupes(macs, "MAC")
    out += _dupes(((f"overlays[{i}].vni", str(o.vni)) for i, o in enumerate(topo.overlays)), "VNI")
    out += _dupes(((f"drbd[{i}].minor", f"{n}:{r.minor}") for i, r in enumerate(topo.drbd)
                   for n in r.nodes), "DRBD minor on a node")
    out += _dupes(((f"hypervisors[{i}].uri", h.uri) for i, h in enumerate(topo.hypervisors)),
                  "hypervisor URI")
    out += _dupes(((f"hypervisors[{i}].underlay", h.underlay)
                   for i, h in enumerate(topo.hypervisors)), "underlay address")
    for i, host in enumerate(topo.hosts):
        out += _dupes(((f"hosts[{i}].disks[{j}].name", d.name) for j, d in enumerate(host.disks)),
                      "disk")
    return out


def _networks(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    hosts = {h.name for h in topo.hosts}
    for i, net in enumerate(topo.networks):
        cidr = ipaddress.ip_network(net.cidr)
        addrs = []
        for host, addr in net.addresses.items():
            path = f"networks[{i}].addresses.{host}"
            if host not in hosts:
                out.append(Problem(path, f"unknown host {host!r}"))
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                out.append(Problem(path, f"not an IP address: {addr!r}"))
                continue
            if ip not in cidr or ip in (cidr.network_address, cidr.broadcast_address):
                out.append(Problem(path, f"{addr} is not a host address in {net.cidr}"))
            addrs.append((path, addr))
        out += _dupes(addrs, "IP address")
    return out


def _overlays(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    nets = {n.name: n for n in topo.networks}
    for i, ov in enumerate(topo.overlays):
        net = nets.get(ov.network)
        if net is None:
            out.append(Problem(f"overlays[{i}].network", f"unknown network {ov.network!r}"))
            continue
    return out


def _drbd(topo: Topology) -> list[Problem]:
    """Each resource's nodes, its replication network and its roles, in that order."""
    out: list[Problem] = []
    hosts = {h.name: h for h in topo.hosts}
    nets = {n.name: n for n in topo.networks}
    for i, res in enumerate(topo.drbd):
        base = f"drbd[{i}]"
        out += _drbd_nodes(base, res, hosts)
        out += _drbd_network(base, res, hosts, nets)
        out += _drbd_roles(base, res)
    return out


def _drbd_nodes(base: str, res: DrbdResource, hosts: dict[str, Host]) -> Iterator[Problem]:
    """Two distinct known hosts, each with the backing disk, large enough."""
    if len(res.nodes) != 2:
        yield Problem(f"{base}.nodes", "a DRBD 8.4 resource needs exactly two nodes, "
                      f"got {len(res.nodes)}")
    if len(set(res.nodes)) != len(res.nodes):
        yield Problem(f"{base}.nodes", "a node is listed twice")
    for j, node in enumerate(res.nodes):
        host = hosts.get(node)
        if host is None:
            yield Problem(f"{base}.nodes[{j}]", f"unknown host {node!r}")
            continue
        disk = next((d for d in host.disks if d.name == res.disk), None)
        if disk is None:
            yield Problem(f"{base}.disk", f"host {node!r} has no disk {res.disk!r}")
        elif disk.size_gb < res.size_gb:
            yield Problem(f"{base}.size_gb", f"{res.size_gb} GB does not fit on "
                          f"{node}:{res.disk} ({disk.size_gb} GB)")


def _drbd_network(base: str, res: DrbdResource, hosts: dict[str, Host],
                  nets: dict[str, Network]) -> Iterator[Problem]:
    """A known network on which every (known) node has an address."""
    net = nets.get(res.network)
    if net is None:
        yield Problem(f"{base}.network", f"unknown network {res.network!r}")
        return
    for node in res.nodes:
        if node in hosts and node not in net.addresses:
            yield Problem(f"{base}.network", f"host {node!r} has no address on {res.network!r}")


def _drbd_roles(base: str, res: DrbdResource) -> Iterator[Problem]:
    """Primaries among the nodes. Two primaries without allow_two_primaries, and
    allow_two_primaries with protocol A or B, are not errors: DRBD brings such a resource
    up (refusing the second promotion, or the net options) and the lab does the same;
    `stackdrill lint` flags both as dangers (stackdrill.dangers)."""
    for j, node in enumerate(res.primary):
        if node not in res.nodes:
            yield Problem(f"{base}.primary[{j}]", f"{node!r} is not a node of {res.name}")
    if len(set(res.primary)) != len(res.primary):
        yield Problem(f"{base}.primary", "a node is listed twice")


def _volume_groups(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    hosts = {h.name: h for h in topo.hosts}
    drbd = {r.name for r in topo.drbd}
    for i, vg in enumerate(topo.volume_groups):
        pv, base = vg.pv, f"volume_groups[{i}].pv"
        if (pv.drbd is None) == (pv.host is None):
            out.append(Problem(base, "give either drbd: RESOURCE or host: + disk:"))
        elif pv.drbd is not None:
            if pv.drbd not in drbd:
                out.append(Problem(f"{base}.drbd", f"no such device: unknown DRBD resource "
                                   f"{pv.drbd!r}"))
        else:
            host = hosts.get(pv.host or "")
            if host is None:
                out.append(Problem(f"{base}.host", f"unknown host {pv.host!r}"))
            elif not any(d.name == pv.disk for d in host.disks):
                out.append(Problem(f"{base}.disk", f"no such device: host {pv.host!r} has no disk "
                                   f"{pv.disk!r}"))
        if vg.locking in ("clustered", "lvmlockd") and pv.drbd in drbd:
            res = topo.drbd_resource(pv.drbd)
            if not any(set(res.nodes) <= set(c.nodes) for c in topo.clusters):
                out.append(Problem(f"volume_groups[{i}].locking",
                                   f"{vg.locking.value} locking needs a cluster containing "
                                   f"{', '.join(res.nodes)}"))
    return out


def _clusters(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    hosts = {h.name for h in topo.hosts}
    nets = {n.name for n in topo.networks}
    for i, cl in enumerate(topo.clusters):
        for j, node in enumerate(cl.nodes):
            if node not in hosts:
                out.append(Problem(f"clusters[{i}].nodes[{j}]", f"unknown host {node!r}"))
        for node in cl.votes:
            if node not in cl.nodes:
                out.append(Problem(f"clusters[{i}].votes.{node}", "not a node of this cluster"))
        if cl.network not in nets:
            out.append(Problem(f"clusters[{i}].network", f"unknown network {cl.network!r}"))
        if cl.two_node and len(cl.nodes) != 2:
            out.append(Problem(f"clusters[{i}].two_node",
                               f"two_node needs exactly two nodes, got {len(cl.nodes)}"))
    return out


def _volumes(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    vgs = {vg.name: vg for vg in topo.volume_groups}
    used: Counter[str] = Counter()
    for i, vol in enumerate(topo.volumes):
        if vol.vg not in vgs:
            out.append(Problem(f"volumes[{i}].vg", f"unknown volume group {vol.vg!r}"))
            continue
        used[vol.vg] += vol.size_gb
    for i, vg in enumerate(topo.volume_groups):
        size = topo.vg_size_gb(vg.name)
        if size is not None and used[vg.name] > size:
            out.append(Problem(f"volume_groups[{i}]", f"capacity exceeded: volumes need "
                               f"{used[vg.name]} GB, the PV has {size} GB"))
    attached: dict[str, str] = {}
    for i, inst in enumerate(topo.instances):
        for j, name in enumerate(inst.volumes):
            if name in attached:
                out.append(Problem(f"instances[{i}].volumes[{j}]",
                                   f"volume {name!r} is already attached to {attached[name]!r}"))
            attached[name] = inst.name
    return out


def _instances(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    hosts = {h.name: h for h in topo.hosts}
    overlays = {o.name: o for o in topo.overlays}
    volumes = {v.name for v in topo.volumes}
    overlay_ips: list[tuple[str, str]] = []
    for i, inst in enumerate(topo.instances):
        base = f"instances[{i}]"
        if inst.flavor not in topo.flavors:
            out.append(Problem(f"{base}.flavor", f"unknown flavor {inst.flavor!r}"))
        host = hosts.get(inst.host)
        if host is None:
            out.append(Problem(f"{base}.host", f"unknown host {inst.host!r}"))
        elif not host.has_role(Role.COMPUTE):
            out.append(Problem(f"{base}.host", f"host {inst.host!r} is not a compute host"))
        for j, vol in enumerate(inst.volumes):
            if vol not in volumes:
                out.append(Problem(f"{base}.volumes[{j}]", f"unknown volume {vol!r}"))
        if inst.overlay is not None:
            out += _instance_overlay(base, inst, overlays)
            if inst.ip is not None:
                overlay_ips.append((f"{base}.ip", f"{inst.overlay}/{inst.ip}"))
    out += [Problem(p.path, p.message.replace("/", " ", 1)) for p in _dupes(overlay_ips, "IP")]
    groups: dict[tuple[str, str], str] = {}
    for i, inst in enumerate(topo.instances):
        if inst.anti_affinity is None:
            continue
        key = (inst.anti_affinity, inst.host)
        if key in groups:
            out.append(Problem(f"instances[{i}].host", f"anti-affinity group "
                               f"{inst.anti_affinity!r} already has {groups[key]!r} on "
                               f"{inst.host!r}"))
        groups[key] = inst.name
    return out


def _instance_overlay(base: str, inst: Instance,
                      overlays: dict[str, Overlay]) -> Iterator[Problem]:
    """A known overlay, a MAC and an IP, the IP inside the overlay's subnet."""
    ov = overlays.get(inst.overlay or "")
    if ov is None:
        yield Problem(f"{base}.overlay", f"unknown overlay {inst.overlay!r}")
    elif inst.ip is None or inst.mac is None:
        yield Problem(f"{base}", "an instance on an overlay needs mac and ip")
    elif ipaddress.ip_address(inst.ip) not in ipaddress.ip_network(ov.cidr):
        yield Problem(f"{base}.ip", f"{inst.ip} is not in overlay {ov.name!r} ({ov.cidr})")


def _capacity(topo: Topology) -> list[Problem]:
    out: list[Problem] = []
    hosts = {h.name: h for h in topo.hosts}
    cpu: Counter[str] = Counter()
    ram: Counter[str] = Counter()
    first_over: dict[str, int] = {}
    for i, inst in enumerate(topo.instances):
        flavor = topo.flavors.get(inst.flavor)
        host = hosts.get(inst.host)
        if flavor is None or host is None:
            continue
        cpu[inst.host] += flavor.vcpus
        ram[inst.host] += flavor.ram_mb
        if (cpu[inst.host] > host.vcpus or ram[inst.host] > host.ram_mb) and \
                inst.host not in first_over:
            first_over[inst.host] = i
            out.append(Problem(f"instances[{i}].host", f"capacity exceeded on {inst.host!r}: "
                               f"{cpu[inst.host]}/{host.vcpus} vCPUs, "
                               f"{ram[inst.host]}/{host.ram_mb} MB RAM"))
    return out
