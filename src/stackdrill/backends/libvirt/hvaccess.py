"""Hypervisor host access: what the lab does on a hypervisor's host, beside its libvirt daemon.

libvirt has an API for domains, networks and pools, but none to add a VXLAN port to a bridge
or to put nftables rules on it. A lab whose networks span daemons needs both on every
hypervisor, so this is the one small interface for them: read the underlay's MTU, add and
remove a lab network's VXLAN port, shape a guest's tap (tbf, through pyroute2), run `nft`.
Which implementation serves a URI is decided here from the URI alone, never by a topology
file:

- `qemu:///system`, `qemu:///session`: this machine's root network namespace;
- a daemon of scripts/second-libvirtd.sh (`qemu+unix:///system?socket=/run/stackdrill/hv/
  NAME/libvirt-sock`): its namespace `sdhv-NAME` on this machine;
- `test:///...`: `Rendered`, which only records what it would do (the test driver has no
  bridges), as netfaults renders its rules there;
- `qemu+ssh://`, `qemu+tls://`: none. stackdrill has no shell on a remote hypervisor (no ssh
  of its own, no keys): a lab network spanning one is refused (README "A lab across
  hypervisors" says what an operator prepares instead).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdrill.errors import BackendUnavailableError, LabNotReadyError
from stackdrill.topology.libvirt_uri import HV_DIR, LOCAL_QEMU, local_hypervisor

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
HV_STATE = "/var/lib/stackdrill/hv"  # second-libvirtd.sh's state dirs (its /var/lib/libvirt)
VXLAN_PORT = 4789  # IANA's (pyroute2 and the kernel default to Linux's old 8472)
TAP_BURST = 4096  # bytes of tbf burst on a shaped tap (what `burst 32kbit` gave tc)
ALIAS_PREFIX = "stackdrill:"  # ifalias of every VXLAN port a lab adds: "stackdrill:LAB/NET"


def netns_of(name: str) -> str:
    """The network namespace scripts/second-libvirtd.sh gives daemon NAME."""
    return f"sdhv-{name}"


def port_alias(lab: str, network: str) -> str:
    return f"{ALIAS_PREFIX}{lab}/{network}"


@dataclass(frozen=True)
class VxlanPort:
    """One lab network's port toward the other hypervisors that carry the same network."""

    name: str  # interface name (naming.LabNames.vxlan)
    alias: str  # port_alias(lab, network): the mark teardown checks before deleting
    vni: int
    bridge: str  # the lab network's bridge on this hypervisor
    mtu: int  # the lab network's MTU
    local: str  # this hypervisor's underlay address
    peers: tuple[str, ...]  # the other hypervisors' underlay addresses (head-end flooding)


class HostAccess(ABC):
    """A hypervisor's host, as far as the lab needs it (see the module's note)."""

    label: str

    @abstractmethod
    def underlay_mtu(self, address: str) -> int | None:
        """The MTU of the interface that holds `address`; None when none holds it."""

    @abstractmethod
    def add_vxlan(self, port: VxlanPort) -> None:
        """Create the port, flood to every peer, enslave it to the bridge, set it up."""

    @abstractmethod
    def remove_lab_ports(self, lab: str) -> list[str]:
        """Delete every VXLAN port marked as `lab`'s (nothing else); their names."""

    @abstractmethod
    def shape(self, ifname: str, mbit: float | None) -> None:
        """Shape what leaves `ifname` (a tap: toward its guest) with tbf at `mbit`; None
        removes the root qdisc. Best effort: a tap that is gone (its guest is off) is
        left alone."""

    @abstractmethod
    def run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        """Run a command (nft) on the hypervisor's host; its stdout."""


class LocalHost(HostAccess):
    """This machine, in its root network namespace (`netns` None) or in a named one."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.label = f"namespace {netns}" if netns else "this machine"

    def _ipr(self) -> Any:
        try:
            from stackdrill.backends.netns import nsops
        except ImportError as exc:  # pragma: no cover - pyroute2 is the netns extra
            raise BackendUnavailableError("a lab across libvirt daemons needs pyroute2 "
                                          "(pip install 'stackdrill[netns]')") from exc
        return nsops.ipr(self.netns) if self.netns else nsops.ipr_root()

    def underlay_mtu(self, address: str) -> int | None:
        with self._ipr() as ipr:
            for msg in ipr.get_addr():
                if msg.get_attr("IFA_ADDRESS") == address:
                    (link,) = ipr.get_links(msg["index"])
                    return int(link.get_attr("IFLA_MTU"))
        return None

    def add_vxlan(self, port: VxlanPort) -> None:
        from pyroute2 import NetlinkError

        try:
            self._add_vxlan(port)
        except NetlinkError as exc:  # e.g. EEXIST: another lab's port has this VNI here
            raise LabNotReadyError(f"{self.label}: adding VXLAN port {port.name} (VNI "
                                   f"{port.vni}) for {port.alias}: {exc}") from exc

    def _add_vxlan(self, port: VxlanPort) -> None:
        with self._ipr() as ipr:
            bridge = ipr.link_lookup(ifname=port.bridge)
            if not bridge:
                raise LabNotReadyError(f"{self.label}: no bridge {port.bridge} for {port.alias}")
            ipr.link("add", ifname=port.name, kind="vxlan", vxlan_id=port.vni,
                     vxlan_local=port.local, vxlan_port=VXLAN_PORT, vxlan_learning=1,
                     mtu=port.mtu)
            (index,) = ipr.link_lookup(ifname=port.name)
            ipr.link("set", index=index, ifalias=port.alias)
            for peer in port.peers:
                ipr.fdb("append", ifindex=index, lladdr="00:00:00:00:00:00", dst=peer)
            ipr.link("set", index=index, master=bridge[0], state="up")

    def remove_lab_ports(self, lab: str) -> list[str]:
        prefix = port_alias(lab, "")
        removed = []
        with self._ipr() as ipr:
            for link in ipr.get_links():
                alias = link.get_attr("IFLA_IFALIAS") or ""
                info = link.get_attr("IFLA_LINKINFO")
                kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
                if kind == "vxlan" and alias.startswith(prefix):
                    ipr.link("del", index=link["index"])
                    removed.append(str(link.get_attr("IFLA_IFNAME")))
        return removed

    def shape(self, ifname: str, mbit: float | None) -> None:
        from pyroute2 import NetlinkError

        with self._ipr() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                log.warning("%s: no interface %s to shape", self.label, ifname)
                return
            try:
                if mbit is None:
                    ipr.tc("del", index=found[0], handle=0, root=True)  # whatever handle
                else:  # `tc qdisc replace dev TAP root tbf rate MBITmbit burst 32kbit
                    # latency 50ms`: the rate in bytes/s, tc's 32kbit is 4096 bytes
                    ipr.tc("replace", "tbf", found[0], rate=round(mbit * 1e6 / 8),
                           burst=TAP_BURST, latency="50ms")
            except NetlinkError as exc:  # no qdisc to delete, the tap gone meanwhile
                log.warning("%s: shaping %s at %s Mbit/s: %s", self.label, ifname, mbit, exc)

    def run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        cmd = (["ip", "netns", "exec", self.netns] if self.netns else []) + argv
        out = subprocess.run(cmd, input=stdin, text=True, capture_output=True, timeout=30,
                             check=False)
        if check and out.returncode != 0:
            raise LabNotReadyError(f"{self.label}: {' '.join(argv)} failed: "
                                   f"{out.stderr.strip() or out.stdout.strip()}")
        return out.stdout


@dataclass
class Rendered(HostAccess):
    """The test driver's hypervisor: records what the lab would do there."""

    label: str = "libvirt's test driver"
    mtu: int = 9216  # a jumbo underlay: room for a 9000-byte lab network inside VXLAN
    ports: dict[str, VxlanPort] = field(default_factory=dict)
    commands: list[tuple[list[str], str | None]] = field(default_factory=list)
    shaped: dict[str, float] = field(default_factory=dict)  # tap -> Mbit/s of its tbf

    def underlay_mtu(self, address: str) -> int | None:
        return self.mtu

    def add_vxlan(self, port: VxlanPort) -> None:
        self.ports[port.name] = port

    def remove_lab_ports(self, lab: str) -> list[str]:
        gone = [n for n, p in self.ports.items() if p.alias.startswith(port_alias(lab, ""))]
        for name in gone:
            del self.ports[name]
        return gone

    def shape(self, ifname: str, mbit: float | None) -> None:
        if mbit is None:
            self.shaped.pop(ifname, None)
        else:
            self.shaped[ifname] = mbit

    def run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        self.commands.append((argv, stdin))
        return ""


_RENDERED: dict[str, Rendered] = {}  # per test URI: one in-process "hypervisor" each


def access_for(uri: str) -> HostAccess | None:
    """The access to the hypervisor behind `uri`, or None where stackdrill has none."""
    if uri.startswith("test:"):
        return _RENDERED.setdefault(uri, Rendered())
    if uri in LOCAL_QEMU:
        return LocalHost()
    name = local_hypervisor(uri)
    if name is not None:
        check_hv_dir()
        if not (NETNS_DIR / netns_of(name)).exists():
            raise LabNotReadyError(f"{uri}: no namespace {netns_of(name)}: is the daemon "
                                   f"running? (bash scripts/second-libvirtd.sh start {name})")
        return LocalHost(netns_of(name))
    return None


def local_path(uri: str, path: str) -> str | None:
    """Where a file the daemon behind `uri` names (a guest's channel socket) is on this
    machine; None on a remote hypervisor. A second local daemon sees its own /run/libvirt
    and /var/lib/libvirt (bind mounts, scripts/second-libvirtd.sh), this machine's
    everything else."""
    if uri in LOCAL_QEMU or uri.startswith("test:"):
        return path
    name = local_hypervisor(uri)
    if name is None:
        return None
    for inside, outside in (("/var/lib/libvirt/", f"{HV_STATE}/{name}/lib/"),
                            ("/run/libvirt/", f"{HV_DIR}/{name}/"),
                            ("/var/run/libvirt/", f"{HV_DIR}/{name}/")):
        if path.startswith(inside):
            return outside + path[len(inside):]
    return path


def check_hv_dir(directory: Path = Path(HV_DIR)) -> None:
    """The sockets a topology may name live in a directory only root can write: refuse to
    connect when it is not so (someone else could have put a socket there)."""
    try:
        st = directory.lstat()
    except FileNotFoundError:
        return  # nothing there: connecting fails with libvirt's own message
    if (not stat.S_ISDIR(st.st_mode) or st.st_uid != 0
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise BackendUnavailableError(
            f"{directory} must be a directory owned by root and writable by root only "
            f"(it is {stat.filemode(st.st_mode)} uid {st.st_uid}): refusing its sockets")
    if os.geteuid() != 0:
        raise BackendUnavailableError("a lab on a second local libvirt daemon needs root")
