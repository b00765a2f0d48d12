"""The simulated lab: every model built from one topology, wired together, one kernel.

Build order follows the stack bottom-up: hosts -> disks -> underlay -> clusters ->
DRBD -> LVM -> overlays -> hypervisors and workloads -> control-plane heartbeats.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from stackdrill.api import (
    UNCONFIGURED,
    ActionFailed,
    ActionRan,
    Clock,
    CommandResult,
    DrbdNodeStatus,
    DrbdNotice,
    Drivers,
    Lab,
    LabOptions,
    LvmView,
    Observation,
    PowerState,
    ScheduledActionFailed,
    StoredRecord,
    WriteOp,
)
from stackdrill.api.commands import Command
from stackdrill.api.events import FactValue
from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.disk_copies import DiskCopy
from stackdrill.backends.sim.disks import BlockDevice, SimDisk
from stackdrill.backends.sim.drbd import DrbdResourceSim
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.instances import Hypervisors, IscsiSession
from stackdrill.backends.sim.kernel import Kernel, SimClock
from stackdrill.backends.sim.lvm import LAB_START_JITTER_S, LvmHost, LvmTimings, VolumeGroupSim
from stackdrill.backends.sim.network import Underlay
from stackdrill.backends.sim.overlay import OverlaySim
from stackdrill.faults import Fault
from stackdrill.topology import Instance, Locking, NetworkPurpose, Role, Topology

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0  # nova-compute report_interval


class SimLab(Lab):
    """A topology brought to life inside the discrete-event simulator."""

    backend = "sim"

    def __init__(self, topology: Topology, *, lab_name: str, seed: int,
                 options: LabOptions) -> None:
        self.topology = topology
        self.name = lab_name
        self.seed = seed
        self.kernel = Kernel(seed)
        self.tracer = self.kernel.tracer
        self._clock = SimClock(self.kernel)
        k = self.kernel
        k.log("lab", "create", name=lab_name, topology=topology.name, seed=seed)
        self.hosts = {h.name: SimHost(k, h) for h in topology.hosts}
        self.disks = {(h.name, d.name): SimDisk(k, h.name, d.name, d.size_gb,
                                                 latency_s=d.latency_ms / 1000.0)
                      for h in topology.hosts for d in h.disks}
        self.disk_copies: dict[tuple[str, str], DiskCopy] = {}  # `disk save`, by host, disk
        for host in self.hosts.values():
            host.subscribe(self._power_disks)
        self.underlay = Underlay(k, topology, self.hosts)
        self.clusters = {c.name: ClusterSim(k, c, self.hosts, self.underlay,
                                            power_off=self._fence_power_off)
                         for c in topology.clusters}
        self.drbd = {r.name: self._build_drbd(r.name) for r in topology.drbd}
        lvm_timings = LvmTimings(start_jitter_s=LAB_START_JITTER_S)
        self.lvm_hosts = {h: LvmHost(k, h, self.hosts[h], lvm_timings) for h in self.hosts}
        self.vgs = {vg.name: self._build_vg(vg.name) for vg in topology.volume_groups}
        self.overlays = {o.name: OverlaySim(k, o, self.underlay, self.hosts,
                                            announce=o.announce, guest_ipv6=o.guest_ipv6)
                         for o in topology.overlays}
        wanted = set(options.writers if options.writers is not None
                     else (i.name for i in topology.instances))
        self.hypervisors = Hypervisors(k, self.hosts, options.write_interval_s, wanted)
        self.exports: dict[tuple[str, str], str] = {}  # (volume, client host) -> serving host
        self._volume_users = _volume_users(topology)
        for name, lvm in self.lvm_hosts.items():
            lvm.opened = self._lv_opened(name)
        self.partitions: dict[Fault, int] = {}
        self.results: dict[str, CommandResult] = {}
        self.last_heartbeat: dict[str, float | None] = {}
        self._controller = self._pick_controller()
        self._start_instances()
        self._start_heartbeats()
        from stackdrill.backends.sim.drivers import make_drivers

        self._drivers = make_drivers(self)

    # ------------------------------------------------------------ building

    def _power_disks(self, host: SimHost, _old: PowerState, new: PowerState) -> None:
        for (h, _d), disk in self.disks.items():
            if h == host.name:
                disk.powered = new is not PowerState.OFF

    def _fence_power_off(self, victim: str) -> Any:
        host = self.hosts[victim]
        host.power_off()
        return self.kernel.env.timeout(0)

    def _cluster_of(self, nodes: tuple[str, ...]) -> ClusterSim | None:
        for spec in self.topology.clusters:
            if set(nodes) <= set(spec.nodes):
                return self.clusters[spec.name]
        return None

    def _build_drbd(self, name: str) -> DrbdResourceSim:
        spec = self.topology.drbd_resource(name)
        cluster = self._cluster_of(spec.nodes)
        res = DrbdResourceSim(
            self.kernel, spec, {n: self.hosts[n] for n in spec.nodes},
            {n: self.disks[(n, spec.disk)] for n in spec.nodes}, self.underlay,
            stonith=cluster.stonith if cluster else None,
            outdate_peer=self._outdate_peer(spec.name),
        )
        res.held_open = self._drbd_held_open(spec.name)
        return res

    def _drbd_held_open(self, resource: str) -> Callable[[str], bool]:
        """drbd_main.c drbd_open counts the openers of /dev/drbdN (open_cnt): device-mapper
        holds it open while an LV of a VG on it is active on that host, which every guest
        and iSCSI export using the LV there needs."""
        vgs = [vg.name for vg in self.topology.volume_groups if vg.pv.drbd == resource]

        def held(host: str) -> bool:
            lvm = getattr(self, "lvm_hosts", {}).get(host)
            return lvm is not None and any(lvm.holds(vg) for vg in vgs)

        return held

    def _lv_opened(self, host: str) -> Callable[[str, str], bool]:
        """An LV is open on `host` while a running guest uses it there, or through an
        iSCSI export served from there (the target holds the device open)."""
        def opened(_vg: str, lv: str) -> bool:
            return any(guest.running and lv in guest.volumes
                       and self.exports.get((lv, guest.host), guest.host) == host
                       for guests in self.hypervisors.guests.values()
                       for guest in guests.values())

        return opened

    def _outdate_peer(self, resource: str) -> Callable[[str, str], bool]:
        """The fence-peer handler: succeeds when the peer is known to be powered off (a
        STONITH-style handler's exit code 7, "peer is down"), or when a cluster still sees
        the peer and can mark its disk Outdated (crm-fence-peer)."""

        def outdate(peer: str, requester: str) -> bool:
            if self.hosts[peer].power is PowerState.OFF:
                return True
            # crm-fence-peer commits a constraint through the cluster: only a membership
            # both sides share will do (a node thawed from a hang still lists the peer
            # that already expelled it, and is about to be fenced by it)
            cluster = self._cluster_of((peer, requester))
            return cluster is not None and peer in cluster.members(requester) \
                and requester in cluster.members(peer)

        return outdate

    def _build_vg(self, name: str) -> VolumeGroupSim:
        spec = self.topology.volume_group(name)
        if spec.pv.drbd is not None:
            res = self.drbd[spec.pv.drbd]
            devices: dict[str, BlockDevice] = {n: res.device(n) for n in res.spec.nodes}
            size_gb = res.spec.size_gb
            cluster = self._cluster_of(res.spec.nodes)
        else:
            host = spec.pv.host or ""
            devices = {host: self.disks[(host, spec.pv.disk or "")]}
            size_gb = self.topology.host(host).disks[0].size_gb
            cluster = None
        extents = size_gb * 1024 // spec.extent_mb
        vg = VolumeGroupSim(self.kernel, spec, devices, extents, cluster,
                            {h: self.lvm_hosts[h] for h in devices})
        lvs = {v.name: v.size_gb * 1024 // spec.extent_mb
               for v in self.topology.volumes if v.vg == name}
        vg.initialise(lvs, active_on=self._initial_activation(name))
        return vg

    def _initial_activation(self, vg_name: str) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
        """Where the lab build leaves each LV active. A shared VG under lvmlockd is built as
        on real guests: `lvcreate -an`, then `lvchange -aey` where an instance uses the LV
        (libvirt provision and storage driver), so an LV holds an ex lock on its guest's host
        and no lock elsewhere; other locking modes: active on the VG's primaries."""
        if self.topology.volume_group(vg_name).locking is not Locking.LVMLOCKD:
            return self._initial_active_hosts(vg_name)
        used: dict[str, set[str]] = {}
        for inst in self.topology.instances:
            for vol in inst.volumes:
                used.setdefault(vol, set()).add(self.initial_server(vol, inst.host))
        return {v.name: tuple(sorted(used.get(v.name, ())))
                for v in self.topology.volumes if v.vg == vg_name}

    def _initial_active_hosts(self, vg_name: str) -> tuple[str, ...]:
        vg = self.topology.volume_group(vg_name)
        if vg.pv.drbd is None:
            return (vg.pv.host or "",)
        res = self.drbd[vg.pv.drbd]
        promoted = tuple(n for n in res.spec.primary if n not in res.refused_promotions)
        return promoted or res.spec.nodes[:1]

    def _pick_controller(self) -> str | None:
        controllers = self.topology.hosts_with(Role.CONTROLLER)
        return controllers[0].name if controllers else None

    def volume_device(self, volume: str, host: str, served_by: str) -> BlockDevice:
        """The block device an instance on `host` uses for `volume`, served by `served_by`."""
        vg = self.topology.volume(volume).vg
        device = self.lvm_hosts[served_by].lv_device(vg, volume)
        if served_by == host:
            return device
        net = self.storage_network(host, served_by)
        return IscsiSession(self.kernel, self.underlay, net, host, served_by, device,
                            self.topology.iscsi.replacement_timeout)

    def storage_network(self, a: str, b: str) -> str:
        return self.topology.storage_network(a, b).name

    def initial_server(self, volume: str, host: str) -> str:
        replicas = self.topology.replica_hosts(volume)
        if host in replicas:
            return host
        vg = self.topology.volume_group(self.topology.volume(volume).vg)
        return self._initial_active_hosts(vg.name)[0]

    def _refused_here(self, inst: Instance) -> str | None:
        """Why an instance cannot start where the topology puts it: its volume's LV sits on
        a DRBD device this host was refused promotion on. A Secondary's /dev/drbdN cannot
        be opened (drbd_main.c drbd_open: -EROFS for writing, -EMEDIUMTYPE for reading), so
        the VG is not activated there and the guest has no disk."""
        for vol in inst.volumes:
            pv = self.topology.volume_group(self.topology.volume(vol).vg).pv
            refused = self.drbd[pv.drbd].refused_promotions if pv.drbd else {}
            if inst.host in refused:
                return (f"{vol} is on /dev/drbd{self.drbd[pv.drbd or ''].spec.minor}, which is "
                        f"Secondary on {inst.host} ({refused[inst.host]})")
        return None

    def _start_instances(self) -> None:
        for inst in self.topology.instances:
            refused = self._refused_here(inst)
            if refused is not None:
                self.kernel.log("lab", "instance-not-started", instance=inst.name,
                                host=inst.host, why=refused)
                continue
            devices = {}
            for vol in inst.volumes:
                server = self.initial_server(vol, inst.host)
                self.exports[(vol, inst.host)] = server
                devices[vol] = self.volume_device(vol, inst.host, server)
            self.hypervisors.start(inst.name, inst.host, devices)
            if inst.overlay is not None and inst.mac and inst.ip:
                self.overlays[inst.overlay].plug(inst.name, inst.mac, inst.ip, inst.host)

    def _start_heartbeats(self) -> None:
        """Each compute service, and each storage host's volume service (cinder-volume),
        reports every HEARTBEAT_S over the management network: the recovery engine watches
        both, since a lost storage primary stops every guest that uses its volumes."""
        mgmt = self.topology.networks_for(NetworkPurpose.MANAGEMENT)
        compute = self.topology.hosts_with(Role.COMPUTE)
        storage = [h for h in self.topology.hosts_with(Role.STORAGE) if h not in compute]
        for host in (*compute, *storage):
            self.last_heartbeat[host.name] = 0.0
            self.kernel.env.process(self._heartbeat(host.name, [n.name for n in mgmt]))

    def _heartbeat(self, host: str, networks: list[str]) -> Any:
        env = self.kernel.env
        offset = (sorted(self.hosts).index(host) % 10) * HEARTBEAT_S / 10
        yield env.timeout(offset)
        while True:
            if self.hosts[host].up and self._reaches_controller(host, networks):
                self.last_heartbeat[host] = env.now
            yield env.timeout(HEARTBEAT_S)

    def _reaches_controller(self, host: str, networks: list[str],
                            conversation: bool = False) -> bool:
        """A heartbeat (a datagram) from `host` arrives at the controller; with
        `conversation`, the controller's requests to the host are answered too (both ways
        pass: a one-way cut that lets heartbeats through still fails a request)."""
        if self._controller is None:
            return True
        if host == self._controller:
            return self.hosts[host].up
        for net in networks:
            if not self.underlay.attached(host, net):
                continue
            if conversation and not self.underlay.connected(self._controller, host, net):
                continue
            if self.underlay.send(host, self._controller, net, 200) is not None:
                return True
        return False

    # ------------------------------------------------------------ Lab API

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def drivers(self) -> Drivers:
        return self._drivers

    def inject(self, fault: Fault) -> None:
        from stackdrill.backends.sim.faults import inject

        inject(self, fault)

    def heal(self, fault: Fault) -> None:
        from stackdrill.backends.sim.faults import heal

        heal(self, fault)

    def call_at(self, time: float, action: Callable[[], None], label: str) -> None:
        """A failing action is traced, as on the real-time backends, and raised out of the
        run loop where the caller waits on the clock."""

        def fire() -> None:
            self.kernel.emit(ActionRan(label))
            try:
                action()
            except Exception as exc:
                self.kernel.emit(ActionFailed(label, f"{type(exc).__name__}: {exc}"))
                raise ScheduledActionFailed(f"scheduled action {label!r} failed: {exc}") \
                    from exc

        self.kernel.call_later(time - self.kernel.now, fire)

    def execute(self, command: Command, label: str) -> None:
        from stackdrill.backends.sim.commands import execute

        execute(self, command, label)

    def quiesce(self) -> None:
        """The final read comes after the run, as on real guests (workloads frozen, the
        kernel still delivering): a protocol A write acknowledged just before the end and
        still on the wire lands on the peer, unless its link is dead (random seed 2585:
        a write acked 12 ms before the end was read as lost)."""
        for res in self.drbd.values():
            res.flush(until=math.inf)

    def command_results(self) -> dict[str, CommandResult]:
        return dict(self.results)

    def history(self) -> list[WriteOp]:
        return list(self.hypervisors.history)

    def stored_records(self, volume: str) -> dict[int, StoredRecord]:
        """Records as an UpToDate replica holds them, read through the on-disk LVM metadata."""
        vg_name = self.topology.volume(volume).vg
        vg = self.vgs[vg_name]
        records = vg.read_lv_records(volume, host=self._authoritative_replica(vg_name, volume))
        return {seq: rec for seq, rec in records.items() if isinstance(rec, StoredRecord)}

    def _authoritative_replica(self, vg_name: str, volume: str) -> str | None:
        """The replica a reader trusts: the one serving the volume's running instance (a
        disconnected dual-primary pair holds two different truths), else the DRBD Primary,
        else any running node with UpToDate data; None lets the VG choose (a plain disk)."""
        pv = self.topology.volume_group(vg_name).pv
        if pv.drbd is None:
            return None
        status = self.drbd[pv.drbd].status()
        for user in self._volume_users.get(volume, ()):
            for host in self.hypervisors.running_on(user):
                server = self.exports.get((volume, host), host)
                serving = status.get(server, UNCONFIGURED)
                if serving.role == "Primary" and serving.disk in ("UpToDate", "Diskless"):
                    return server
        for node, st in sorted(status.items()):
            if st.role == "Primary" and st.disk == "UpToDate":
                return node
        # no Primary: two UpToDate Secondaries may hold two truths (a split brain nobody
        # resolved yet); the volume's own truth is where its last acknowledged write went
        writer = self._last_write_replica(volume)
        if writer is not None and status.get(writer, UNCONFIGURED).disk == "UpToDate":
            return writer
        for node, st in sorted(status.items()):
            if st.role == "Secondary" and st.disk == "UpToDate":
                return node
        return None

    def _last_write_replica(self, volume: str) -> str | None:
        """The replica that stored the volume's last acknowledged write (its writer's host
        itself, or the storage server it was exported from)."""
        acked = [op for op in self.hypervisors.history if op.volume == volume
                 and op.outcome == "ok"]
        if not acked:
            return None
        host = max(acked, key=lambda op: op.completed or op.invoked).host
        return self.exports.get((volume, host), host)

    def _vgs_answers(self, vg_name: str, host: str,
                     drbd: dict[str, dict[str, DrbdNodeStatus]]) -> bool:
        """Whether `vgs` on `host` would list the VG: the host runs, can read the PV (a DRBD
        Secondary refuses every open), and for a shared VG on DLM lvmlockd gets its lock
        (while the DLM waits for fencing, or after losing quorum, `vgs` hangs)."""
        spec = self.topology.volume_group(vg_name)
        if not self.hosts[host].powered:
            return False
        if spec.pv.drbd is not None and \
                drbd[spec.pv.drbd].get(host, UNCONFIGURED).role != "Primary":
            return False
        if not self.lvm_hosts[host].reads_shared(vg_name):
            return False
        if spec.locking in (Locking.CLUSTERED, Locking.LVMLOCKD) and spec.lock_manager == "dlm":
            cluster = self._cluster_of((host,))
            return cluster is None or cluster.dlm_usable(host)
        return True

    def observe(self) -> Observation:
        drbd = {name: res.status() for name, res in sorted(self.drbd.items())}
        views: list[LvmView] = []
        for vg_name, vg in sorted(self.vgs.items()):
            for host in sorted(vg.hosts()):
                if self._vgs_answers(vg_name, host, drbd):
                    views.append(self.lvm_hosts[host].view(vg_name))
        return Observation(
            time=self.kernel.now,
            running=self.hypervisors.running(),
            power={h: s.power for h, s in sorted(self.hosts.items())},
            drbd=drbd,
            lvm=views,
            quorum={name: c.status() for name, c in sorted(self.clusters.items())},
            io_errors=len(self.hypervisors.io_errors),
            split_brains=self.split_brains(),
        )

    def predicted_lost_writes(self) -> int:
        """What the DRBD model says a workload must have lost: acknowledged writes that were
        still on the replication link when the link died, from a node that did not end as
        the Primary (a surviving primary resyncs them to its peer later; a dead or demoted
        one's are gone) or that a node without UpToDate data sent (Diskless: the wire held
        the only copy; Inconsistent: the resumed resync overwrites it), for the check to
        compare with what it finds missing."""
        lost = 0
        for res in self.drbd.values():
            status = res.status()
            for dropped in res.dropped_writes():
                if isinstance(dropped.data, StoredRecord) and (
                        not dropped.local
                        or status.get(dropped.node, UNCONFIGURED).role != "Primary"):
                    lost += 1
        return lost

    def split_brains(self) -> dict[str, tuple[str, ...]]:
        """resource -> nodes on which a split brain was detected at some point."""
        found: dict[str, tuple[str, ...]] = {}
        for name, res in sorted(self.drbd.items()):
            nodes = sorted({str(node) for e in res.events() if e.kind == "split-brain"
                            for node in _split_brain_nodes(e) if node})
            if nodes:
                found[name] = tuple(nodes)
        return found

    def advance(self, until: float) -> None:
        self.kernel.run_until(until)

    def destroy(self) -> None:
        """Nothing outside this process exists; dropping references is the teardown."""
        self.kernel.log("lab", "destroy", name=self.name)
        self.kernel.close()


def _volume_users(topology: Topology) -> dict[str, tuple[str, ...]]:
    """Volume -> the instances that attach it, in topology order (the topology never changes;
    a reader asks once per volume)."""
    users: dict[str, list[str]] = {}
    for instance in topology.instances:
        for volume in dict.fromkeys(instance.volumes):
            users.setdefault(volume, []).append(instance.name)
    return {volume: tuple(names) for volume, names in users.items()}


def _split_brain_nodes(notice: DrbdNotice) -> tuple[FactValue, ...]:
    """The nodes a split-brain notice names: both (unresolved) or survivor and victim."""
    nodes = notice.get("nodes")
    if isinstance(nodes, tuple) and nodes:
        return nodes
    return (notice.get("survivor"), notice.get("victim"))
