"""The recovery engine's drivers on the simulated lab: power, compute, storage, network.

Every operation takes simulated time (IPMI round trips, DRBD promotion, iSCSI
login, guest boot) and can fail the way the real one does: a host that cannot
be reached, a replica DRBD refuses to promote, a guest that never writes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.api import (
    AttachMode,
    ComputeDriver,
    DrbdConnected,
    DrbdConnectionLost,
    DrbdNotice,
    DrbdStateChanged,
    DriverError,
    Drivers,
    GuestInfo,
    HostHealth,
    LabEvent,
    NetworkDriver,
    Note,
    PowerChanged,
    PowerDriver,
    PowerState,
    Replica,
    StorageDriver,
    Traced,
    VolumePath,
    Witness,
)
from stackdrill.backends.sim.disks import BlockIOError
from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.backends.sim.instances import GUEST_BOOT_S
from stackdrill.backends.sim.lvm_meta import LvmError
from stackdrill.topology import Locking, NetworkPurpose

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab

IPMI_S = 3.0  # chassis power off + status confirm
IPMI_TIMEOUT_S = 10.0  # ipmitool lanplus: retries then "Unable to establish ... session"
PROMOTE_S = 1.0
ACTIVATE_S = 0.5
ISCSI_LOGIN_S = 2.0
PLUG_S = 1.0
VERIFY_TIMEOUT_S = 60.0


# What the simulated DRBD, LVM and disks say when they refuse (as drbdadm, lvm and the
# kernel do): the lab said no, which the driver API reports as DriverError. Anything else
# raised by an operation is a bug in the simulator and reaches the engine as itself.
# What the simulated tools refuse with (drbdadm, lvm, a failed disk): a driver operation
# that meets one failed, which the engine handles; anything else is a bug.
TOOL_REFUSALS: tuple[type[Exception], ...] = (DrbdError, LvmError, BlockIOError)


def _refusals_as_driver_errors(
        gen: Generator[simpy.Event, Any, Any]) -> Generator[simpy.Event, Any, Any]:
    try:
        return (yield from gen)
    except TOOL_REFUSALS as exc:
        raise DriverError(str(exc)) from exc


class _SimDriver:
    def __init__(self, lab: SimLab) -> None:
        self.lab = lab
        self.env: simpy.Environment = lab.kernel.env

    def _run(self, gen: Generator[simpy.Event, Any, Any]) -> Future[Any]:
        return self.lab.kernel.future(self.env.process(_refusals_as_driver_errors(gen)))

    def _reachable(self, host: str) -> bool:
        """The controller reaches `host` on the management network."""
        return self.lab.hosts[host].up and self.lab.last_heartbeat.get(host) is not None and \
            self.lab._reaches_controller(host, [n.name for n in self.lab.topology.networks_for(
                NetworkPurpose.MANAGEMENT)], conversation=True)


class SimPower(_SimDriver, PowerDriver):
    """IPMI-like power control. A host whose BMC is unreachable (fault
    `power_controller_down`) reads UNKNOWN, and on/off requests fail after ipmitool's
    retries, the way `ipmitool -I lanplus` fails against a dead BMC."""

    def __init__(self, lab: SimLab) -> None:
        super().__init__(lab)
        self.unreachable: set[str] = set()

    def set_controller(self, host: str, reachable: bool) -> None:
        if reachable:
            self.unreachable.discard(host)
        else:
            self.unreachable.add(host)
        self.lab.kernel.log(f"bmc/{host}", "reachable" if reachable else "unreachable")

    def state(self, host: str) -> PowerState:
        if host in self.unreachable:
            return PowerState.UNKNOWN
        return self.lab.hosts[host].power

    def _check_bmc(self, host: str, action: str) -> Generator[simpy.Event, Any, None]:
        if host in self.unreachable:
            yield self.env.timeout(IPMI_TIMEOUT_S)
            self.lab.kernel.log(f"bmc/{host}", "request-failed", action=action)
            raise DriverError(f"power {action} {host}: Unable to establish IPMI v2 / RMCP+ "
                              "session (BMC unreachable)")

    def power_off(self, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            yield from self._check_bmc(host, "off")
            yield self.env.timeout(IPMI_S)
            self.lab.hosts[host].power_off()
            # With `fencing: manual` the cluster waits for an operator to confirm the node
            # is off (fence_ack_manual); the power driver has just confirmed exactly that.
            for spec in self.lab.topology.clusters:
                if host in spec.nodes and spec.fencing.value == "manual":
                    self.lab.clusters[spec.name].ack_manual_fence(host)

        return self._run(op())

    def power_on(self, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            yield from self._check_bmc(host, "on")
            yield self.env.timeout(IPMI_S)
            sim_host = self.lab.hosts[host]
            sim_host.power_on()
            while sim_host.power is PowerState.BOOTING:
                yield self.env.timeout(1.0)
            if not sim_host.up:
                raise DriverError(f"{host} did not boot (power {sim_host.power.value})")

        return self._run(op())


class SimCompute(_SimDriver, ComputeDriver):
    def health(self, host: str) -> HostHealth:
        lab = self.lab
        return HostHealth(host, lab.last_heartbeat.get(host), lab.drivers.power.state(host))

    def witnesses(self, host: str) -> tuple[Witness, ...]:
        """The host's peers on its storage and replication networks: each says whether it
        still reaches the host, and reports with its own heartbeat (a peer that is down
        reports nothing)."""
        lab = self.lab
        beats = lab.last_heartbeat
        others = [n for n in lab.topology.networks
                  if NetworkPurpose.MANAGEMENT not in n.purposes and host in n.addresses]
        return tuple(
            Witness(f"{peer}@{n.name}", lab.underlay.connected(host, peer, n.name),
                    beats.get(peer) if lab.hosts[peer].up else None)
            for n in others for peer in n.addresses if peer != host)

    def guests(self, host: str) -> Future[list[GuestInfo]]:
        def op() -> Generator[simpy.Event, Any, list[GuestInfo]]:
            yield self.env.timeout(0.5)
            if not self._reachable(host):
                raise DriverError(f"cannot reach the compute service on {host}")
            guests = self.lab.hypervisors.guests[host]
            return [GuestInfo(name, g.running) for name, g in sorted(guests.items())]

        return self._run(op())

    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            if not self.lab.hosts[host].up:
                raise DriverError(f"{host} is not running")
            devices = {}
            for vol, path in volumes.items():
                served_by = path.split(":", 2)[1] if path.startswith("iscsi:") else host
                devices[vol] = self.lab.volume_device(vol, host, served_by)
            guest = self.lab.hypervisors.start(instance, host, devices, boot_s=GUEST_BOOT_S)
            yield self.env.timeout(GUEST_BOOT_S)
            if not guest.running:
                raise DriverError(f"{instance} stopped while booting on {host}")

        return self._run(op())

    def destroy(self, instance: str, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            yield self.env.timeout(1.0)
            if not self.lab.hosts[host].up:
                raise DriverError(f"cannot destroy {instance}: {host} is not running")
            self.lab.hypervisors.destroy(instance, host)

        return self._run(op())

    def set_boot_hook(self, hook: Callable[[str, list[str]], list[str]] | None) -> None:
        self.lab.hypervisors.boot_check = hook

    def verify(self, instance: str, host: str) -> Future[bool]:
        def op() -> Generator[simpy.Event, Any, bool]:
            deadline = self.env.now + VERIFY_TIMEOUT_S
            wanted = set(self.lab.topology.instance(instance).volumes)
            while self.env.now < deadline:
                guest = self.lab.hypervisors.guests[host].get(instance)
                if guest is None or not guest.running:
                    return False
                if not wanted <= set(guest.volumes):
                    return False  # booted without a volume it needs: its application is down
                if guest.first_ok_at is not None:
                    return True
                yield self.env.timeout(1.0)
            return False

        return self._run(op())


class SimStorage(_SimDriver, StorageDriver):
    """DRBD-backed volumes. It follows each resource's state changes (the way a storage
    agent follows `drbdsetup events2`) to know which Secondary was left behind: cut off
    while its peer stayed Primary, so its UpToDate is stale once the peer acked alone."""

    def __init__(self, lab: SimLab) -> None:
        super().__init__(lab)
        self._behind: dict[tuple[str, str], float] = {}  # (resource, node) -> since
        self._cut: dict[str, float] = {}  # resource -> when its link was last cut
        lab.kernel.subscribe(self._on_event)

    def _on_event(self, traced: Traced) -> None:
        """Follow every DRBD event, and power changes (a hang or thaw changes who can write)."""
        event, now = traced.event, traced.at
        if type(event) is Note and not event.source.startswith("drbd/"):
            return  # most of the trace (overlay learning grows as hosts x instances)
        if isinstance(event, PowerChanged):
            for resource, res in self.lab.drbd.items():
                if event.host in res.nodes:
                    self._refresh(resource, now)
            return
        name = _drbd_resource(event)
        if name is None or name not in getattr(self.lab, "drbd", {}):
            return  # not DRBD, or the lab is still being built
        if isinstance(event, DrbdConnectionLost):
            self._cut[name] = event.since
        elif isinstance(event, DrbdConnected):
            self._cut.pop(name, None)
        elif isinstance(event, DrbdStateChanged) and event.role == "Primary":
            self._behind.pop((name, event.node), None)  # promoted: the writer
        self._refresh(name, now)

    def _refresh(self, name: str, now: float) -> None:
        """A Secondary is left behind from when it is disconnected while a peer that can
        write (running, not hung, Primary) is disconnected too; a connection clears it. A
        Primary is a writer itself (dual-primary divergence is a split brain, which the
        after-sb policies settle), so it is never 'behind'."""
        res = self.lab.drbd[name]
        for me, node in res.nodes.items():
            if node.conn.connected or (node.running and node.role.value == "Primary"):
                self._behind.pop((name, me), None)
                continue
            if (name, me) in self._behind:
                continue
            if any(p.running and p.host.up and p.role.value == "Primary"
                   and not p.conn.connected for n, p in res.nodes.items() if n != me):
                self._behind[(name, me)] = min(self._cut.get(name, now), now)

    def replicas(self, volume: str) -> list[Replica]:
        lab = self.lab
        pv = lab.topology.volume_group(lab.topology.volume(volume).vg).pv
        if pv.drbd is None:
            host = pv.host or ""
            return [Replica(host, "(local)", "UpToDate", lab.hosts[host].up)]
        status = lab.drbd[pv.drbd].status()
        return [Replica(node, st.role, st.disk, lab.hosts[node].up,
                        self._behind_since(pv.drbd, volume, node))
                for node, st in sorted(status.items())]

    def _behind_since(self, res: str, volume: str, node: str) -> float | None:
        """Left behind only once the peer really acked a write to `volume` without it (what
        the writer's out-of-sync counter, `drbdsetup status --statistics`, shows while it
        lives; in-flight blocks that were never acked do not count). A cut nobody wrote
        through loses nothing, and its Secondary stays usable."""
        since = self._behind.get((res, node))
        if since is None:
            return None
        wrote = any(op.volume == volume and op.outcome == "ok" and op.completed is not None
                    and op.completed > since for op in self.lab.hypervisors.history)
        return since if wrote else None

    def _serves(self, volume: str, replica: Replica) -> bool:
        """The replica's device can serve the volume's I/O: UpToDate (or a plain disk), a
        Diskless node reading through its peer, or a Primary whose replaced disk is still
        SyncTarget of an UpToDate peer (drbd_req.c may_do_writes: `disk == D_UP_TO_DATE ||
        pdsk == D_UP_TO_DATE`; reads of unsynced blocks go to the peer). Passing over that
        Primary to promote its Secondary is refused: "Multiple primaries not allowed"."""
        if replica.disk_state in ("UpToDate", "(local)", "Diskless"):
            return True
        pv = self.lab.topology.volume_group(self.lab.topology.volume(volume).vg).pv
        if pv.drbd is None or replica.role != "Primary":
            return False
        st = self.lab.drbd[pv.drbd].status()[replica.host]
        return st.connection == "SyncTarget" and st.peer_disk == "UpToDate"

    def _deactivate_unused_elsewhere(self, vg: str, volume: str,
                                     host: str) -> Generator[simpy.Event, Any, None]:
        """clvmd/lvmlockd grant an exclusive activation only while no other node holds the
        LV ("Volume is busy on another node"). An LV still active on a live peer — shared,
        as a dual-primary lab is built — where no guest has it open is deactivated there
        first (`lvchange -an`, which LVM refuses only for an open LV); one a running guest
        uses stays, and the exclusive activation is refused as before."""
        if self.lab.topology.volume_group(vg).locking not in (Locking.CLUSTERED,
                                                                Locking.LVMLOCKD):
            return
        for other, lvm in sorted(self.lab.lvm_hosts.items()):
            if other == host or not self.lab.hosts[other].up or lvm.table(vg, volume) is None:
                continue
            guests = self.lab.hypervisors.guests.get(other, {}).values()
            if any(g.running and volume in g.volumes for g in guests):
                continue
            yield lvm.deactivate(vg, volume)

    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        failed = set(failed)

        def op() -> Generator[simpy.Event, Any, VolumePath]:
            lab = self.lab
            vg_name = lab.topology.volume(volume).vg
            candidates = [r for r in self.replicas(volume)
                          if r.reachable and r.host not in failed and self._serves(volume, r)]
            current = [r for r in candidates if r.behind_since is None]
            candidates = current or candidates  # a left-behind copy only if nothing else
            if not candidates:
                raise DriverError(f"no reachable UpToDate replica of {volume} "
                                  f"(replicas: {', '.join(r.host for r in self.replicas(volume))})")
            pv = lab.topology.volume_group(vg_name).pv
            local = next((r for r in candidates if r.host == host), None)
            primary = next((r for r in candidates if r.role == "Primary"), None)
            single = pv.drbd is not None and not lab.topology.drbd_resource(
                pv.drbd).allow_two_primaries
            if local is not None and single and primary not in (None, local):
                local = None  # its peer is Primary for other guests: serve from there
            server = local or primary or candidates[0]
            if pv.drbd is not None:
                res = lab.drbd[pv.drbd]
                if res.status()[server.host].role != "Primary":
                    yield self.env.timeout(PROMOTE_S)
                    yield res.promote(server.host)
            yield self.env.timeout(ACTIVATE_S)
            yield from self._deactivate_unused_elsewhere(vg_name, volume, server.host)
            yield lab.lvm_hosts[server.host].activate(vg_name, volume, "ex")
            if server.host == host:
                return VolumePath(volume, host, AttachMode.LOCAL, host,
                                  f"/dev/{vg_name}/{volume}")
            net = lab.storage_network(host, server.host)
            if not lab.underlay.connected(host, server.host, net):
                # open-iscsi: the login to an unreachable portal times out (iscsid.conf
                # node.conn[0].timeo.login_timeout, the topology's iscsi.login_timeout) and
                # iscsiadm fails; a flow must not go on to start a guest on a volume path
                # that does not exist
                yield self.env.timeout(lab.topology.iscsi.login_timeout)
                raise DriverError(f"iscsiadm: could not log in to {server.host} for {volume} "
                                  f"from {host}: connection timed out ({net} unreachable)")
            yield self.env.timeout(ISCSI_LOGIN_S)
            lab.exports[(volume, host)] = server.host
            return VolumePath(volume, host, AttachMode.REMOTE, server.host,
                              f"iscsi:{server.host}:/dev/{vg_name}/{volume}")

        return self._run(op())

    def release(self, volume: str, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            lab = self.lab
            yield self.env.timeout(ACTIVATE_S)
            lab.exports.pop((volume, host), None)
            if not lab.hosts[host].up:
                raise DriverError(f"cannot release {volume} on {host}: host is not running")
            vg_name = lab.topology.volume(volume).vg
            if host in lab.vgs[vg_name].hosts():
                yield lab.lvm_hosts[host].deactivate(vg_name, volume)

        return self._run(op())


class SimNetwork(_SimDriver, NetworkDriver):
    def _port(self, instance: str) -> tuple[str | None, str | None, str | None]:
        inst = self.lab.topology.instance(instance)
        return inst.overlay, inst.mac, inst.ip

    def plug(self, instance: str, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            yield self.env.timeout(PLUG_S)
            overlay, mac, ip = self._port(instance)
            if overlay and mac and ip:
                self.lab.overlays[overlay].plug(instance, mac, ip, host)

        return self._run(op())

    def unplug(self, instance: str, host: str) -> Future[None]:
        def op() -> Generator[simpy.Event, Any, None]:
            yield self.env.timeout(PLUG_S)
            overlay, _mac, _ip = self._port(instance)
            if overlay:
                self.lab.overlays[overlay].unplug(instance, host)

        return self._run(op())

    def reachable(self, instance: str) -> Future[bool]:
        def op() -> Generator[simpy.Event, Any, bool]:
            overlay, _mac, ip = self._port(instance)
            if not overlay or not ip:
                return True  # no overlay port: nothing to reach on the network
            running = self.lab.hypervisors.running()
            tried: set[str] = set()
            for peer in (i for i in self.lab.topology.instances
                         if i.overlay == overlay and i.name != instance):
                hosts = running.get(peer.name, [])
                if len(hosts) != 1 or hosts[0] in tried:
                    continue
                tried.add(hosts[0])  # one peer per host: a stale host must not decide alone
                result = yield self.lab.overlays[overlay].ping(peer.name, ip)
                if result.ok:
                    return True
                if len(tried) >= 3:
                    break
            return not tried  # nobody to ping from counts as reachable

        return self._run(op())


def _drbd_resource(event: LabEvent) -> str | None:
    """The DRBD resource an event is about (its trace component is `drbd/<name>`)."""
    if isinstance(event, (DrbdStateChanged, DrbdConnected, DrbdConnectionLost, DrbdNotice)):
        return event.resource
    component = event.component()
    return component.removeprefix("drbd/") if component.startswith("drbd/") else None


def make_drivers(lab: SimLab) -> Drivers:
    return Drivers(SimPower(lab), SimCompute(lab), SimStorage(lab), SimNetwork(lab))
