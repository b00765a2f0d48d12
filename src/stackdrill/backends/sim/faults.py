"""How each catalogue fault becomes true in the simulated lab, and how it is undone."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stackdrill.api import UNCONFIGURED, FaultHealed, FaultInjected
from stackdrill.errors import LabStateError, UnsupportedError
from stackdrill.faults import (
    ClockSkew,
    CorruptBlocks,
    Cut,
    DaemonKill,
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    InstanceCrash,
    LinkDown,
    OverlayFdbStale,
    PacketLoss,
    Partition,
    PowerControllerDown,
    RateLimit,
    SlowDisk,
    TunnelEndpointDown,
    UnderlayMtu,
    describe,
    fault_kinds,
)

if TYPE_CHECKING:
    from stackdrill.backends.sim.drbd import DrbdResourceSim
    from stackdrill.backends.sim.drivers import SimPower
    from stackdrill.backends.sim.lab import SimLab


def _power(lab: SimLab) -> SimPower:
    from stackdrill.backends.sim.drivers import SimPower

    power = lab.drivers.power
    assert isinstance(power, SimPower)
    return power


def inject(lab: SimLab, fault: Fault) -> None:
    inject_, _heal = _pair(fault)
    lab.kernel.emit(FaultInjected(describe(fault)))
    inject_(lab, fault)


def heal(lab: SimLab, fault: Fault) -> None:
    _inject, heal_ = _pair(fault)
    lab.kernel.emit(FaultHealed(describe(fault)))
    heal_(lab, fault)


def _pair(fault: Fault) -> tuple[Action, Action]:
    pair = HANDLERS.get(type(fault))
    if pair is None:  # every catalogue fault has an entry; a new one must get one
        raise UnsupportedError(f"the simulator cannot realise {fault.kind}")
    return pair


def _crash(lab: SimLab, fault: HostCrash) -> None:
    lab.hosts[fault.host].crash()


def _crash_heal(lab: SimLab, fault: HostCrash) -> None:
    if fault.power_back:
        lab.hosts[fault.host].power_on()


def _hang(lab: SimLab, fault: HostHang) -> None:
    lab.hosts[fault.host].hang()


def _thaw(lab: SimLab, fault: HostHang) -> None:
    lab.hosts[fault.host].thaw()


def _reboot(lab: SimLab, fault: HostReboot) -> None:
    lab.hosts[fault.host].reboot()


def _nothing(_lab: SimLab, _fault: Fault) -> None:
    """A reboot heals by itself after the boot time; nothing undoes a corruption or a
    killed process."""


def _disk_fail(lab: SimLab, fault: DiskFailure) -> None:
    lab.disks[(fault.host, fault.disk)].fail()


def _disk_heal(lab: SimLab, fault: DiskFailure) -> None:
    """The disk swap as the DRBD 8.4 user's guide does it (replacing a failed disk with
    internal meta data): `drbdadm detach` first when DRBD still holds the failed disk (no
    I/O reached it, so it never detached itself: the new disk is another device, never
    DRBD's UpToDate backing disk with nothing on it), swap, then create-md and attach.
    The detach is `--force`d: the disk is gone, which DRBD takes as a fact (CS_HARD, as
    its own I/O-error path does), not as a request its state rules may refuse."""
    swapped = [res for res in lab.drbd.values()
               if res.spec.disk == fault.disk and fault.host in res.spec.nodes]
    for res in swapped:
        res.detach(fault.host, force=True)
    lab.disks[(fault.host, fault.disk)].replace()
    for res in swapped:
        reattach(lab, res, fault.host)


def _corrupt(lab: SimLab, fault: CorruptBlocks) -> None:
    """The fault's blocks of the disk's data: a DRBD resource's data area where the disk
    backs one on this host, else the whole disk."""
    disk = lab.disks[(fault.host, fault.disk)]
    backed = [res for res in lab.drbd.values()
              if res.spec.disk == fault.disk and fault.host in res.spec.nodes]
    data_blocks = backed[0].size_kb // 4 if backed else disk.blocks_total
    disk.corrupt(fault.addresses(data_blocks))


def _skew(sign: int) -> Action:
    def act(lab: SimLab, fault: ClockSkew) -> None:
        lab.hosts[fault.host].step_wall_clock(sign * fault.seconds)
    return act


def _kill_instance(lab: SimLab, fault: InstanceCrash) -> None:
    """SIGKILL of the instance's process on the host it runs on now; nothing else moves."""
    if not lab.hypervisors.crash(fault.instance):
        raise LabStateError(f"{describe(fault)}: {fault.instance} runs on no host: there is "
                            "no process to kill")


def _kill_daemon(lab: SimLab, fault: DaemonKill) -> None:
    lab.lvm_hosts[fault.host].kill_lvmlockd()


def _start_daemon(lab: SimLab, fault: DaemonKill) -> None:
    lab.lvm_hosts[fault.host].start_lvmlockd()


def _slow(lab: SimLab, fault: SlowDisk) -> None:
    lab.disks[(fault.host, fault.disk)].slow(fault.latency_ms / 1000.0)


def _fast(lab: SimLab, fault: SlowDisk) -> None:
    lab.disks[(fault.host, fault.disk)].slow(0.0)


def _link(up: bool) -> Action:
    def act(lab: SimLab, fault: LinkDown) -> None:
        lab.underlay.set_link(fault.host, fault.network, up=up)

    return act


def _partition(lab: SimLab, fault: Partition) -> None:
    lab.partitions[fault] = lab.underlay.partition(fault.groups, fault.network)


def _partition_heal(lab: SimLab, fault: Partition) -> None:
    pid = lab.partitions.pop(fault, None)
    if pid is not None:
        lab.underlay.unpartition(pid)


def _cut(lab: SimLab, fault: Cut) -> None:
    lab.partitions[fault] = lab.underlay.cut(fault.directed(), fault.network)


def _loss(lab: SimLab, fault: PacketLoss) -> None:
    lab.underlay.set_loss(fault.host, fault.network, fault.probability)


def _no_loss(lab: SimLab, fault: PacketLoss) -> None:
    lab.underlay.set_loss(fault.host, fault.network, 0.0)


def _rate(lab: SimLab, fault: RateLimit) -> None:
    lab.underlay.set_rate(fault.host, fault.network, fault.mbit)


def _no_rate(lab: SimLab, fault: RateLimit) -> None:
    lab.underlay.set_rate(fault.host, fault.network, None)


def _mtu(lab: SimLab, fault: UnderlayMtu) -> None:
    lab.underlay.set_mtu(fault.host, fault.network, fault.mtu)


def _mtu_back(lab: SimLab, fault: UnderlayMtu) -> None:
    lab.underlay.set_mtu(fault.host, fault.network, None)


def _fdb_stale(stale: bool) -> Action:
    def act(lab: SimLab, fault: OverlayFdbStale) -> None:
        lab.overlays[fault.overlay].stale_fdb(fault.host, stale)

    return act


def _endpoint(up: bool) -> Action:
    def act(lab: SimLab, fault: TunnelEndpointDown) -> None:
        lab.overlays[fault.overlay].tunnel_endpoint(fault.host, up)

    return act


def _bmc(reachable: bool) -> Action:
    def act(lab: SimLab, fault: PowerControllerDown) -> None:
        _power(lab).set_controller(fault.host, reachable=reachable)

    return act


Action = Callable[["SimLab", Any], None]
# Each fault the simulator realises, with its inject and its heal; the backend's declared
# fault support is derived from this table.
HANDLERS: dict[type[Fault], tuple[Action, Action]] = {
    HostCrash: (_crash, _crash_heal),
    HostHang: (_hang, _thaw),
    HostReboot: (_reboot, _nothing),
    DiskFailure: (_disk_fail, _disk_heal),
    SlowDisk: (_slow, _fast),
    CorruptBlocks: (_corrupt, _nothing),
    InstanceCrash: (_kill_instance, _nothing),
    LinkDown: (_link(False), _link(True)),
    Partition: (_partition, _partition_heal),
    Cut: (_cut, _partition_heal),
    PacketLoss: (_loss, _no_loss),
    RateLimit: (_rate, _no_rate),
    UnderlayMtu: (_mtu, _mtu_back),
    OverlayFdbStale: (_fdb_stale(True), _fdb_stale(False)),
    TunnelEndpointDown: (_endpoint(False), _endpoint(True)),
    PowerControllerDown: (_bmc(False), _bmc(True)),
    ClockSkew: (_skew(1), _skew(-1)),
    DaemonKill: (_kill_daemon, _start_daemon),
}
FAULT_KINDS = fault_kinds(HANDLERS)


REATTACH_RETRY_S = 10.0


def reattach(lab: SimLab, resource: DrbdResourceSim, host: str, retry: bool = False) -> None:
    """The operator's `drbdadm attach` after a disk swap: only where DRBD runs and has
    detached the failed disk (a host that is down attaches it when DRBD starts).

    A disconnected Diskless Primary refuses a fresh disk ("Can only attach to the data we
    lost last"): the operator tries again until the peer is back and the attach is taken."""
    from stackdrill.backends.sim.drbd import DrbdError

    status = resource.status().get(host, UNCONFIGURED)
    if not status.running or status.disk != "Diskless" or \
            lab.disks[(host, resource.spec.disk)].failed:
        if not retry:
            lab.kernel.log("fault", "attach-skipped", host=host, resource=resource.spec.name,
                           disk=status.disk)
        return
    try:
        resource.attach(host)
    except DrbdError as exc:
        if not retry:
            lab.kernel.log("fault", "attach-refused", host=host, resource=resource.spec.name,
                           error=str(exc))
        lab.kernel.call_later(REATTACH_RETRY_S, lambda: reattach(lab, resource, host, True))
