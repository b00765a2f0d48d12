"""Bringing a lab up in libvirt: isolated networks, a disk pool with per-node overlays and
data disks, the domains, then (real guests only) addresses, provisioning and workloads.

Networks are shared when a second URI reaches the same daemon (a lab spanning URIs), but only
if the existing network is provably this lab's (its bridge name); anything else is refused.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import libvirt

from stackdrill.api import DriverError, PowerState
from stackdrill.backends.libvirt import cluster, underlay
from stackdrill.backends.libvirt.agent import GuestAgent, GuestCommandError
from stackdrill.backends.libvirt.compute import ENGINE_HEARTBEAT_INTERVAL_S
from stackdrill.backends.libvirt.readiness import check_latency
from stackdrill.backends.libvirt.xmlgen import domain_xml, network_xml, pool_xml, volume_xml
from stackdrill.errors import LabNotReadyError, StackdrillError

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

MIB = 1 << 20
log = logging.getLogger(__name__)


def up(lab: LibvirtLab) -> None:
    """Create and start the guests (the lab's own way, or Vagrant's), then make them ready;
    on any error tear everything down."""
    try:
        started = lab.create_guests()
        make_ready(lab, started)
    except (GuestCommandError, DriverError, libvirt.libvirtError) as exc:
        # no drill has started: whatever went wrong, the lab never was ready
        _destroy_after_failure(lab, exc)
        raise LabNotReadyError(f"bringing up {lab.name}: {exc}") from exc
    except BaseException as exc:
        _destroy_after_failure(lab, exc)
        raise


def _destroy_after_failure(lab: LibvirtLab, cause: BaseException) -> None:
    """Tear down a lab whose bring-up failed. A teardown that fails too is logged, never
    raised: the error the user must see is why the lab did not come up (a teardown error
    once replaced it, and the run ended with no report and no reason)."""
    try:
        lab.destroy()
    except StackdrillError as exc:
        lab.log("teardown-failed", error=str(exc)[:500], after=type(cause).__name__)
        log.error("%s: teardown after a failed bring-up: %s", lab.name, exc)


def create_guests(lab: LibvirtLab) -> dict[str, float]:
    """Define networks, disks and domains and start them: when each one started."""
    for uri, conn in lab.conns.items():
        up_networks(lab, uri, conn)
        up_storage(lab, uri, conn)
    for node in lab.nodes.values():
        dom = lab.conns[node.uri].defineXML(domain_xml(lab.domain_spec(node.host)))
        lab.log("domain-define", host=node.host, domain=dom.name())
    started = {h: time.monotonic() for h in lab.nodes}
    for node in lab.nodes.values():
        lab.domain(node.host).create()
        started[node.host] = time.monotonic()
        lab.log("domain-start", host=node.host)
    lab.progress(f"{len(lab.nodes)} guests starting ({lab.settings.domain_type})")
    return started


def make_ready(lab: LibvirtLab, started: dict[str, float]) -> None:
    """Wait for the guest agents, provision storage and the cluster stack, start the
    instances' workloads (real guests only)."""
    if not lab.settings.wait_ready or lab.all_test():
        return
    wait_ready(lab, started)
    lab.progress(f"guests ready (slowest {max(lab.boot_seconds.values()):.0f} s)")
    measure_agent(lab)
    for host, node in lab.nodes.items():
        if not lab.is_test(node.uri):  # a test-driver domain has no guest clock
            lab.clocks.sample(host)
    if lab.settings.provision:
        from stackdrill.backends.libvirt.provision import provision

        lab.timings.update(provision(lab))
        lab.progress("storage provisioned: " + ", ".join(
            f"{k.removesuffix('_s')} {v:.0f} s" for k, v in lab.timings.items()))
        lab.overlay.build()
        start_instances(lab)
        lab.progress("workloads writing; the drill starts")


def up_networks(lab: LibvirtLab, uri: str, conn: libvirt.virConnect) -> None:
    wanted = {n for node in lab.nodes.values() if node.uri == uri for n in node.nics}
    for net in lab.topology.networks:
        if net.name not in wanted:
            continue
        name = lab.names.network(net.name)
        existing = _lookup_network(conn, name)
        if existing is not None:
            if _bridge_of(existing) != lab.names.bridge(net.name):
                raise StackdrillError(f"libvirt network {name} exists and is not this lab's")
            lab.log("network-shared", network=net.name, uri=uri)  # URIs of one daemon
            continue
        obj = conn.networkDefineXML(network_xml(name, lab.names.bridge(net.name), net.mtu))
        obj.create()
        lab.log("network-up", network=net.name, bridge=lab.names.bridge(net.name), uri=uri)
    underlay.connect(lab, uri)  # after the last daemon's bridges: VXLAN between daemons


def up_pool(lab: LibvirtLab, uri: str, conn: libvirt.virConnect) -> libvirt.virStoragePool:
    """The lab's storage pool on `uri` (its work directory), made now if it is not there."""
    name = lab.names.pool()
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        pool = conn.storagePoolDefineXML(pool_xml(name, str(lab.workdir_for(uri))))
        if not lab.is_test(uri):
            pool.build(0)
        pool.create()
        return pool


def up_storage(lab: LibvirtLab, uri: str, conn: libvirt.virConnect) -> None:
    """The pool with each node's root overlay of the guest image and its data disks."""
    name = lab.names.pool()
    pool = up_pool(lab, uri, conn)
    cap = lab.settings.disk_cap_mb * MIB
    for node in lab.nodes.values():
        if node.uri != uri:
            continue
        pool.createXML(volume_xml(f"{node.host}-root.qcow2", lab.image.root_bytes,
                                  backing=lab.image.root), 0)
        for disk in lab.topology.host(node.host).disks:
            size = min(disk.size_gb << 30, cap)
            pool.createXML(volume_xml(Path(node.disks[disk.name].path).name, size), 0)
    lab.log("storage-up", pool=name, uri=uri)


def wait_ready(lab: LibvirtLab, started: dict[str, float]) -> None:
    def ready(host: str) -> None:
        GuestAgent(lab.domain(host)).wait_ready(lab.boot_deadline(host))
        lab.boot_seconds[host] = time.monotonic() - started[host]
        lab.log("guest-ready", host=host, boot_s=round(lab.boot_seconds[host], 1))
        lab.configure_network(host)

    for future in [lab.submit(ready, h) for h in lab.nodes]:
        future.result()


def measure_agent(lab: LibvirtLab, rounds: int = 3) -> None:
    """The guest agents' round trip (the slowest guest's median of `rounds` no-op commands),
    against what the lab's heartbeat monitor needs: a runner too slow for it is said so
    before any drill runs (MachineTooSlowError), instead of producing a verdict."""
    worst = 0.0
    for host in lab.nodes:
        times = []
        for _ in range(rounds):
            began = time.monotonic()
            lab.run(host, "true", timeout=30).check()
            times.append(time.monotonic() - began)
        worst = max(worst, sorted(times)[len(times) // 2])
    budget = lab.compute.heartbeats.budget()
    lab.progress(f"guest agent round trip {worst:.2f} s (budget {budget:.2f} s)")
    lab.log("agent-latency", rtt_s=round(worst, 3), budget_s=round(budget, 3))
    check_latency(worst, budget, f"{lab.compute.heartbeats.calls_per_cycle()} agent calls "
                  f"per heartbeat cycle within the engine's {ENGINE_HEARTBEAT_INTERVAL_S:g} s "
                  "heartbeat interval")


def start_instances(lab: LibvirtLab) -> None:
    """Every instance of the topology on its host, volumes prepared there first: the ones
    without a writer in the drill run idle, as the simulator starts them (the topology says
    they run). The lab is ready once every writer has had a write acknowledged: a drill's
    first observation must not race a writer still starting (under TCG that takes seconds)."""
    for inst in lab.topology.instances:
        paths = {v: lab.drivers.storage.prepare(v, inst.host).result().path
                 for v in inst.volumes}
        lab.compute.start_now(inst.name, inst.host, paths)
        lab.overlay.plug(inst.name, inst.host)
    for inst in (i for i in lab.topology.instances if lab.compute.writes(i.name)):
        if not lab.compute.verify(inst.name, inst.host).result():
            raise LabNotReadyError(f"{inst.name} on {inst.host}: no write acknowledged within "
                                  "a minute of its start")


def after_boot(lab: LibvirtLab, host: str) -> None:
    """What the host's init does when it powers on again, in a real node's order: wait
    for the guest, address its NICs, bring its DRBD resources up (Secondary; DRBD then
    reconnects and resyncs as its own rules decide), start its cluster stack where the
    lab runs one (cluster.boot_command), then start the compute service, which asks the
    control plane which of its guests to resume (Nova's init_host)."""
    GuestAgent(lab.domain(host)).wait_ready(lab.boot_deadline(host))
    lab.clocks.sample(host)  # a new boot: its workloads' stamps start from zero again
    lab.configure_network(host)
    lab.mirror_power(host, {h: lab.drivers.power.state(h).value for h in lab.nodes
                            if h != host})
    for res in lab.topology.drbd:
        if host in res.nodes:
            up = lab.run(host, f"drbdadm up {res.name}", timeout=60)
            if up.rc != 0:
                lab.log("drbd-up-failed", host=host, resource=res.name,
                        error=up.stderr.strip())
    stack = cluster.boot_command(lab.topology, host)
    if stack is not None:
        started = lab.run(host, stack, timeout=60)
        if started.rc != 0:
            lab.log("cluster-start-failed", host=host, error=started.stderr.strip())
    lab.power_event(host, PowerState.ON, "booted")
    lab.overlay.rebuild(host)
    lab.compute.boot(host)


def configure_network(lab: LibvirtLab, host: str) -> None:
    """Name each NIC after its network and give it the topology's address (no DHCP)."""
    lines = []
    for net_name, nic in lab.nodes[host].nics.items():
        net = lab.topology.network(net_name)
        prefix = ipaddress.ip_network(net.cidr).prefixlen
        ifname = net_name[:15]
        lines.append(
            f"i=$(grep -l '{nic.mac}' /sys/class/net/*/address | head -1 | cut -d/ -f5); "
            f"ip link set dev $i down; ip link set dev $i name {ifname}; "
            f"ip link set dev {ifname} mtu {net.mtu} up; "
            f"ip addr replace {net.addresses[host]}/{prefix} dev {ifname}"
        )
    if lines:
        lab.run(host, "\n".join(lines)).check()


def _bridge_of(net: libvirt.virNetwork) -> str | None:
    elem = ET.fromstring(net.XMLDesc(0)).find("bridge")
    return None if elem is None else elem.get("name")


def _lookup_network(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return None
