"""How each catalogue fault becomes true in the simulated lab, and how it is undone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackdrill.faults import (
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
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
)

if TYPE_CHECKING:
    from stackdrill.backends.sim.drbd import DrbdResourceSim
    from stackdrill.backends.sim.drivers import SimPower
    from stackdrill.backends.sim.lab import SimLab


def _networks(lab: SimLab, host: str, network: str | None) -> list[str]:
    return [n for n in lab.underlay.networks if (network is None or n == network)
            and lab.underlay.attached(host, n)]


def _power(lab: SimLab) -> SimPower:
    from stackdrill.backends.sim.drivers import SimPower

    power = lab.drivers.power
    assert isinstance(power, SimPower)
    return power


def inject(lab: SimLab, fault: Fault) -> None:
    lab.kernel.log("fault", "inject", fault=describe(fault))
    match fault:
        case HostCrash(host=host):
            lab.hosts[host].crash()
        case HostHang(host=host):
            lab.hosts[host].hang()
        case HostReboot(host=host):
            lab.hosts[host].reboot()
        case DiskFailure(host=host, disk=disk):
            lab.disks[(host, disk)].fail()
        case SlowDisk(host=host, disk=disk, latency_ms=ms):
            lab.disks[(host, disk)].slow(ms / 1000.0)
        case LinkDown(host=host, network=net):
            lab.underlay.set_link(host, net, up=False)
        case Partition():
            lab.partitions[fault] = lab.underlay.partition(fault.groups, fault.network)
        case PacketLoss(host=host, network=net, probability=p):
            lab.underlay.set_loss(host, net, p)
        case RateLimit(host=host, network=net, mbit=mbit):
            lab.underlay.set_rate(host, net, mbit)
        case UnderlayMtu(host=host, network=net, mtu=mtu):
            lab.underlay.set_mtu(host, net, mtu)
        case OverlayFdbStale(host=host, overlay=ov):
            lab.overlays[ov].stale_fdb(host, True)
        case TunnelEndpointDown(host=host, overlay=ov):
            lab.overlays[ov].tunnel_endpoint(host, False)
        case PowerControllerDown(host=host):
            _power(lab).set_controller(host, reachable=False)


def heal(lab: SimLab, fault: Fault) -> None:
    lab.kernel.log("fault", "heal", fault=describe(fault))
    match fault:
        case HostCrash(host=host, power_back=back):
            if back:
                lab.hosts[host].power_on()
        case HostHang(host=host):
            lab.hosts[host].thaw()
        case HostReboot():
            pass  # a reboot heals itself after the boot time
        case DiskFailure(host=host, disk=disk):
            lab.disks[(host, disk)].replace()
            for res in lab.drbd.values():
                if res.spec.disk == disk and host in res.spec.nodes:
                    reattach(lab, res, host)
        case SlowDisk(host=host, disk=disk):
            lab.disks[(host, disk)].slow(0.0)
        case LinkDown(host=host, network=net):
            lab.underlay.set_link(host, net, up=True)
        case Partition():
            pid = lab.partitions.pop(fault, None)
            if pid is not None:
                lab.underlay.unpartition(pid)
        case PacketLoss(host=host, network=net):
            lab.underlay.set_loss(host, net, 0.0)
        case RateLimit(host=host, network=net):
            lab.underlay.set_rate(host, net, None)
        case UnderlayMtu(host=host, network=net):
            lab.underlay.set_mtu(host, net, None)
        case OverlayFdbStale(host=host, overlay=ov):
            lab.overlays[ov].stale_fdb(host, False)
        case TunnelEndpointDown(host=host, overlay=ov):
            lab.overlays[ov].tunnel_endpoint(host, True)
        case PowerControllerDown(host=host):
            _power(lab).set_controller(host, reachable=True)


REATTACH_RETRY_S = 10.0


def reattach(lab: SimLab, resource: DrbdResourceSim, host: str, retry: bool = False) -> None:
    """The operator's `drbdadm attach` after a disk swap: only where DRBD runs and has
    detached the failed disk (a host that is down attaches it when DRBD starts).

    A disconnected Diskless Primary refuses a fresh disk ("Can only attach to the data we
    lost last"): the operator tries again until the peer is back and the attach is taken."""
    from stackdrill.backends.sim.drbd import DrbdError

    status = resource.status().get(host, {})
    if not status.get("running") or status.get("disk") != "Diskless" or \
            lab.disks[(host, resource.spec.disk)].failed:
        if not retry:
            lab.kernel.log("fault", "attach-skipped", host=host, resource=resource.spec.name,
                           disk=str(status.get("disk")))
        return
    try:
        resource.attach(host)
    except DrbdError as exc:
        if not retry:
            lab.kernel.log("fault", "attach-refused", host=host, resource=resource.spec.name,
                           error=str(exc))
        lab.kernel.call_later(REATTACH_RETRY_S, lambda: reattach(lab, resource, host, True))
