"""The tenant overlay between real guests, programmed by the shared overlay controller.

Each member guest gets a kernel VXLAN device (learning off, static FDB only) on its NIC of
the overlay's network and a bridge; `stackdrill.overlay.OverlayController` decides every
FDB entry, and `ShellPlane` applies them with iproute2 through the guest agent, exactly
as the netns backend's controller does through netlink. An instance's port is a veth pair
from its network namespace in the guest (where its workload runs) into that bridge, with
the topology's MAC and IP.

A powered-off (or hung, or still booting) guest has no kernel state to program: changes
for it are skipped and the host gets its VTEP and whole FDB again once it has booted
(`rebuild`).
"""

from __future__ import annotations

import ipaddress
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackdrill.api import CommandResult
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.overlay import OverlayController, ShellPlane, VtepDevices
from stackdrill.overlay.probes import probe
from stackdrill.overlay.shell_plane import ShellResult
from stackdrill.overlay.throughput import Endpoints, measure

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

INSTANCE_IF = "eth0"  # the instance's interface inside its namespace


@dataclass(frozen=True)
class _Skipped:
    """What a command for a powered-off guest (or a test-driver domain, which has no guest)
    returns: nothing to program there now."""

    rc: int = 0
    stdout: str = ""
    stderr: str = ""


class GuestOverlay:
    """The lab's overlays: the shared controller over the guests, and instance ports."""

    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab
        self._index = {ov.name: i for i, ov in enumerate(lab.topology.overlays)}
        self._port = {inst.name: f"vp{i}" for i, inst in enumerate(lab.topology.instances)}
        self.controller = OverlayController(lab.topology, ShellPlane(self._run, self.devices))
        self.plugged: dict[str, str] = {}  # instance -> host its port is on
        self._lock = threading.Lock()

    def devices(self, host: str, overlay: str) -> VtepDevices:
        index = self._index[overlay]
        network = self.lab.topology.overlay(overlay).network
        return VtepDevices(vxlan=f"vx{index}", bridge=f"ovbr{index}",
                           underlay=network[:15],  # NICs are named after their network
                           bridge_mac=self.lab.names.mac(host, f"overlay/{overlay}"))

    def _run(self, host: str, command: str) -> ShellResult:
        """A controller push: skipped for a guest that is off, hung or still booting (its
        agent cannot answer yet, and `rebuild` programs its whole FDB once it has
        booted); a push to a booting cmp1 failed the evacuation of its own guests."""
        if self.lab.is_test(self.lab.nodes[host].uri) or not self.lab.should_answer(host):
            return _Skipped()
        return self.lab.run(host, command, timeout=60)

    # ------------------------------------------------------------------ VTEPs

    def build(self) -> None:
        self.controller.build()
        self.lab.log("overlay-up", overlays=",".join(self._index))

    def rebuild(self, host: str) -> None:
        """A rebooted member: its VTEPs and FDB from the controller's desired state."""
        if any(host in s.members for s in self.controller.overlays.values()):
            self.controller.build_host(host)
            self.lab.log("overlay-rebuilt", host=host)

    # ------------------------------------------------------------------ faults

    def freeze(self, overlay: str, host: str) -> None:
        """overlay_fdb_stale: the controller stops pushing to `host`, whose FDB keeps what
        it had (the guest's kernel state is untouched)."""
        self.controller.freeze(overlay, host)
        self.lab.log("overlay-frozen", overlay=overlay, host=host)

    def thaw(self, overlay: str, host: str) -> None:
        """The controller reaches `host` again and pushes whatever it missed."""
        self.controller.thaw(overlay, host)
        self.lab.log("overlay-thawed", overlay=overlay, host=host)

    def set_endpoint(self, overlay: str, host: str, up: bool) -> None:
        """tunnel_endpoint_down: the guest's VXLAN device goes down (its underlay NIC stays
        up); back up, the controller resyncs its FDB, as after any loss of state."""
        vxlan = self.devices(host, overlay).vxlan
        result = self._run(host, f"ip link set {vxlan} {'up' if up else 'down'}")
        if result.rc != 0:
            raise GuestCommandError(f"{host}: ip link set {vxlan}: {result.stderr.strip()}")
        if up:
            self.controller.sync(overlay, host, force=True)
        self.lab.log("overlay-endpoint", overlay=overlay, host=host,
                     state="up" if up else "down")

    # ------------------------------------------------------------------ ports

    def plug(self, instance: str, host: str) -> None:
        """The instance's port on `host`'s overlay bridge with its MAC and IP; the
        controller then points every other member's FDB at `host`, and the instance
        speaks once to every member so their bridges relearn where its MAC is."""
        spec = self.lab.topology.instance(instance)
        if spec.overlay is None or spec.mac is None or spec.ip is None:
            return
        overlay = self.lab.topology.overlay(spec.overlay)
        plen = ipaddress.ip_network(overlay.cidr).prefixlen
        port, bridge = self._port[instance], self.devices(host, spec.overlay).bridge
        self.lab.run(host, "\n".join([
            "set -e",
            f"ip netns add {instance} 2>/dev/null || true",
            f"ip -n {instance} link set lo up",
            f"ip link del {port} 2>/dev/null || true",
            f"ip link add {port} mtu {overlay.mtu} type veth peer name {INSTANCE_IF} "
            f"netns {instance}",
            f"ip -n {instance} link set {INSTANCE_IF} address {spec.mac} mtu {overlay.mtu}",
            f"ip -n {instance} addr replace {spec.ip}/{plen} dev {INSTANCE_IF}",
            f"ip -n {instance} link set {INSTANCE_IF} up",
            f"ip link set {port} master {bridge} up",
        ]), timeout=60).check()
        with self._lock:
            self.plugged[instance] = host
        self.controller.locate(spec.overlay, spec.mac, host)
        peers = self.controller.overlays[spec.overlay].host_ips.values()
        self.lab.run(host, "; ".join(f"ip netns exec {instance} ping -n -q -c 1 -W 1 {ip}"
                                     for ip in peers) + "; true", timeout=60)
        self.lab.log("overlay-plug", instance=instance, host=host)

    def unplug(self, instance: str, host: str) -> None:
        spec = self.lab.topology.instance(instance)
        with self._lock:
            if self.plugged.get(instance) != host:
                return
            del self.plugged[instance]
        self._run(host, f"ip link del {self._port[instance]} 2>/dev/null; true")
        if spec.overlay and spec.mac:
            self.controller.locate(spec.overlay, spec.mac, None)

    def reachable(self, instance: str) -> bool:
        """Ping the instance's IP from the overlay bridges of up to three powered members,
        other hosts first (as the netns backend asks); nobody to ask counts as reachable."""
        spec = self.lab.topology.instance(instance)
        if spec.overlay is None or spec.ip is None:
            return True
        where = self.plugged.get(instance)
        if where is None:
            return False
        members = self.controller.overlays[spec.overlay].members
        askers = sorted((h for h in members if self.lab.should_answer(h)),
                        key=lambda h: (h == where, h))[:3]
        for host in askers:
            if self.lab.run(host, f"ping -n -q -c 3 -i 0.2 -W 1 {spec.ip}", timeout=30).rc == 0:
                return True
        return not askers

    def probe(self, src: str, dst: str) -> CommandResult:
        """The operator's overlay checks run inside `src` toward `dst` (shared probes)."""
        where = self.plugged.get(src)
        if where is None:
            return CommandResult(ok=False, detail=f"{src} has no port on the overlay")
        return probe(_InstanceRunner(self.lab, where, src), INSTANCE_IF, self.lab.topology,
                     src, dst, self.lab.clock.now)

    def throughput(self, src: str, dst: str, seconds: float) -> CommandResult:
        """iperf3 inside `src` toward `dst`, then between their guests (shared probe)."""
        ends = []
        for instance in (src, dst):
            where = self.plugged.get(instance)
            if where is None:
                return CommandResult(ok=False, detail=f"{instance} has no port on the overlay")
            ends.append(Endpoints(_InstanceRunner(self.lab, where, instance),
                                  _GuestRunner(self.lab, where), where))
        return measure(self.lab.topology, src, dst, (ends[0], ends[1]), seconds,
                       self.lab.clock.now)


@dataclass(frozen=True)
class _InstanceRunner:
    """Runs argv inside an instance's namespace in its guest, for the shared probes."""

    lab: LibvirtLab
    host: str
    instance: str

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        result = self.lab.run(self.host, f"ip netns exec {self.instance} {shlex.join(argv)}",
                              timeout=timeout + 10)
        return result.rc, result.stdout


@dataclass(frozen=True)
class _GuestRunner:
    """Runs argv in a guest's own (host) namespace, for the throughput probe's underlay run."""

    lab: LibvirtLab
    host: str

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        result = self.lab.run(self.host, shlex.join(argv), timeout=timeout + 10)
        return result.rc, result.stdout
