"""Immutable pydantic models of a lab topology.

Field names follow the real tools where they have one (DRBD's `after-sb-0pri`
becomes `after_sb_0pri`, corosync's `two_node` stays `two_node`), so an operator
recognises their configuration in a topology file.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackdrill.echo import shown
from stackdrill.topology.libvirt_uri import uri_problem
from stackdrill.topology.lvm_names import lv_name_problem, lvm_rule, vg_name_problem

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
T = TypeVar("T", bound=BaseModel)
MAC_RE = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")  # used with fullmatch: no "\n" after it


class Frozen(BaseModel):
    """Base of every topology model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False,
                              allow_inf_nan=False)


class Role(StrEnum):
    COMPUTE = "compute"
    STORAGE = "storage"
    CONTROLLER = "controller"


class Disk(Frozen):
    name: Name = Field(description="Device name of a data disk on the host, e.g. 'sdb'.")
    size_gb: int = Field(gt=0, le=65536)
    latency_ms: float = Field(
        default=0.5, gt=0, le=10000,
        description="Service time of one local I/O on the simulator (an SSD answers in "
                    "~0.1-0.5 ms, a disk in ~5-10 ms); it sets how long a write is on the "
                    "wire alone under protocol A. Real backends measure their own disks.")


class Host(Frozen):
    """A machine of the lab: a compute node (runs instances), a storage node or a controller."""

    name: Name
    roles: tuple[Role, ...] = Field(min_length=1, description="compute, storage and/or controller")
    vcpus: int = Field(default=8, gt=0, le=1024)
    ram_mb: int = Field(default=16384, gt=0)
    disks: tuple[Disk, ...] = ()
    boot_s: float = Field(default=45.0, gt=0, description="Time from power-on to services up.")
    reserved: bool = Field(
        default=False, description="A spare that takes no instances until a recovery needs it."
    )
    libvirt_uri: str | None = Field(
        default=None, description="Hypervisor of this host on the VM backend (default: local)."
    )

    @field_validator("libvirt_uri")
    @classmethod
    def _libvirt_uri(cls, value: str | None) -> str | None:
        problem = uri_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class NetworkPurpose(StrEnum):
    MANAGEMENT = "management"
    STORAGE = "storage"
    REPLICATION = "replication"
    TUNNEL = "tunnel"
    CLUSTER = "cluster"


class Network(Frozen):
    """An underlay L2/L3 segment joining some hosts (one address per host)."""

    name: Name
    purposes: tuple[NetworkPurpose, ...] = Field(min_length=1)
    cidr: str
    mtu: int = Field(default=1500, ge=576, le=9216)
    bandwidth_mbit: float = Field(default=1000.0, gt=0)
    latency_ms: float = Field(default=0.2, ge=0)
    addresses: dict[Name, str] = Field(description="host name -> address in cidr")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a network address: {exc}") from None
        return value


class Overlay(Frozen):
    """A VXLAN L2 segment across hosts, programmed by a central controller (the vCider model)."""

    name: Name
    vni: int = Field(ge=1, le=16777215)
    network: Name = Field(description="The underlay network that carries the encapsulated frames.")
    mtu: int = Field(default=1450, ge=576, le=9000)
    cidr: str
    port: int = Field(default=4789, ge=1, le=65535)
    announce: bool = Field(
        default=True,
        description="An instance plugged on a host (started or moved) sends a gratuitous "
                    "ARP, which re-teaches every bridge where its MAC is; off: it stays "
                    "silent until it sends something itself (sim and netns).")
    guest_ipv6: bool = Field(
        default=True,
        description="Instances run IPv6 on their overlay interface: as it comes up they "
                    "send at once (MLD reports, DAD), which re-teaches their host's bridge "
                    "even without an announcement; off: silent until they send (sim and "
                    "netns; MACHINE-FACTS: test with and without it).")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a network address: {exc}") from None
        return value


class Protocol(StrEnum):
    """DRBD replication protocols, named by their acknowledgement point."""

    A = "A"  # local disk written + packet in the TCP send buffer
    B = "B"  # local disk written + peer received it (peer memory)
    C = "C"  # local disk written + peer disk written


AfterSb0Pri = Literal[
    "disconnect",
    "discard-younger-primary",
    "discard-older-primary",
    "discard-zero-changes",
    "discard-least-changes",
]
AfterSb1Pri = Literal["disconnect", "consensus", "violently-as0p", "discard-secondary"]
AfterSb2Pri = Literal["disconnect", "violently-as0p"]
FencingPolicy = Literal["dont-care", "resource-only", "resource-and-stonith"]
OnIoError = Literal["detach", "pass_on", "call-local-io-error"]


class DrbdNetOptions(Frozen):
    """DRBD 8.4 net options that decide when a peer is declared lost and how often a
    connection is retried, in drbd.conf's own units (ping-timeout and timeout in tenths of
    a second). Bounds and defaults: drbd-8.4 drbd/linux/drbd_limits.h (DRBD_PING_INT_*,
    DRBD_PING_TIMEO_*, DRBD_TIMEOUT_*, DRBD_KO_COUNT_*, DRBD_CONNECT_INT_*); the kernel
    (drbd_nl.c _check_net_options) checks nothing across them."""

    ping_int: int = Field(default=10, ge=1, le=120, description="ping-int, seconds")
    ping_timeout: int = Field(default=5, ge=1, le=300, description="ping-timeout, 0.1 s")
    timeout: int = Field(default=60, ge=1, le=600, description="timeout, 0.1 s")
    ko_count: int = Field(default=7, ge=0, le=200, description="ko-count (0: off)")
    connect_int: int = Field(default=10, ge=1, le=120, description="connect-int, seconds")

    @property
    def ping_timeout_s(self) -> float:
        return self.ping_timeout / 10

    @property
    def timeout_s(self) -> float:
        return self.timeout / 10

    @property
    def effective_timeout_s(self) -> float:
        """drbd_req.c request_timer_fn: ent = timeout * ko_count (0 when ko-count is 0)."""
        return self.timeout_s * self.ko_count


class DrbdResource(Frozen):
    """A DRBD 8.4 resource replicating one backing disk between two hosts."""

    name: Name
    minor: int = Field(default=0, ge=0, le=1048575, description="/dev/drbd<minor>")
    nodes: tuple[Name, ...] = Field(description="Exactly two hosts (DRBD 8.4).")
    disk: Name = Field(description="Backing disk name, present on every node.")
    size_gb: int = Field(gt=0)
    network: Name = Field(description="Network carrying the replication traffic.")
    protocol: Protocol = Protocol.C
    allow_two_primaries: bool = False
    after_sb_0pri: AfterSb0Pri = "disconnect"
    after_sb_1pri: AfterSb1Pri = "disconnect"
    after_sb_2pri: AfterSb2Pri = "disconnect"
    fencing: FencingPolicy = "dont-care"
    on_io_error: OnIoError = "detach"
    primary: tuple[Name, ...] = Field(
        default=(), description="Hosts Primary at start (two only with allow_two_primaries)."
    )
    resync_rate_mbit: float = Field(default=800.0, gt=0)
    verify_alg: Literal["md5", "sha1", "sha256", "crc32c"] | None = Field(
        default=None, description="net verify-alg: the digest drbdadm verify compares "
        "(online verify is refused without one)")
    csums_alg: Literal["md5", "sha1", "sha256", "crc32c"] | None = Field(
        default=None, description="net csums-alg: a resync compares digests of each request "
        "first and sends the data only where they differ")
    net: DrbdNetOptions = Field(default_factory=DrbdNetOptions,
                                description="Peer-loss and reconnect timing (net section).")


    @property
    def resync_rate_kib(self) -> int:
        """resync_rate_mbit (10^6 bit/s) in drbd.conf's unit for resync-rate, KiB/s."""
        return max(1, round(self.resync_rate_mbit * 1e6 / 8 / 1024))


class Locking(StrEnum):
    """LVM metadata locking; `clustered` is the seed's clvmd `locking_type = 3`."""

    NONE = "none"  # locking_type 0
    LOCAL = "local"  # locking_type 1: flock on this host only
    CLUSTERED = "clustered"  # locking_type 3: clvmd over the cluster's DLM
    LVMLOCKD = "lvmlockd"  # lvm2 >= 2.02.116: lvmlockd with dlm or sanlock


class PhysicalVolume(Frozen):
    """Where a VG lives: a DRBD device, or one host's local disk."""

    drbd: Name | None = None
    host: Name | None = None
    disk: Name | None = None


class VolumeGroup(Frozen):
    name: Annotated[Name, lvm_rule(vg_name_problem)]
    pv: PhysicalVolume
    locking: Locking = Locking.LOCAL
    lock_manager: Literal["dlm", "sanlock"] = "dlm"
    extent_mb: int = Field(default=4, gt=0)


class Volume(Frozen):
    """A block volume (a Cinder volume): an LV in a VG, reached locally or over iSCSI."""

    name: Annotated[Name, lvm_rule(lv_name_problem)]
    vg: Name
    size_gb: int = Field(gt=0)


class Flavor(Frozen):
    vcpus: int = Field(gt=0)
    ram_mb: int = Field(gt=0)


class Instance(Frozen):
    """A guest (a Nova instance) with its overlay port and attached volumes."""

    name: Name
    flavor: str
    host: Name
    overlay: Name | None = None
    mac: str | None = None
    ip: str | None = None
    volumes: tuple[Name, ...] = ()
    anti_affinity: Name | None = Field(
        default=None, description="Server group: no two members on one host."
    )

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        if value is not None and not MAC_RE.fullmatch(value):
            raise ValueError(f"not a lower-case MAC address like fa:16:3e:00:00:01: "
                             f"{shown(value)}")
        return value

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"not an IP address: {shown(value)}") from None
        return value


class ClusterFencing(StrEnum):
    NONE = "none"
    MANUAL = "manual"  # fence_manual: an operator must acknowledge
    POWER = "power"  # a fence agent powers the node off


class ClusterSpec(Frozen):
    """A corosync/votequorum cluster (the seed's cman), needed by clustered LVM."""

    name: Name
    nodes: tuple[Name, ...] = Field(min_length=1)
    network: Name
    votes: dict[Name, int] = Field(default_factory=dict, description="Default: 1 per node.")
    expected_votes: int | None = Field(default=None, gt=0)
    two_node: bool = False
    wait_for_all: bool | None = Field(default=None, description="Default: on with two_node.")
    fencing: ClusterFencing = ClusterFencing.POWER
    token_ms: int = Field(default=3000, gt=0, description="corosync totem token timeout")


class IscsiInitiator(Frozen):
    """open-iscsi's session timeouts on every host that reaches a volume over iSCSI, by
    their iscsid.conf names; the defaults are open-iscsi's."""

    replacement_timeout: int = Field(
        default=120, ge=1, le=86400,
        description="node.session.timeo.replacement_timeout, seconds: how long I/O waits "
                    "for a lost session to come back before it fails")
    login_timeout: int = Field(
        default=15, ge=1, le=3600,
        description="node.conn[0].timeo.login_timeout, seconds: how long a login may take")


class Hypervisor(Frozen):
    """A libvirt daemon some hosts run on (`hosts[].libvirt_uri`, or the backend's default
    URI) and its address on the underlay between hypervisors: where the other daemons
    send the lab networks they share with it (VXLAN). Only the libvirt backend reads it,
    and only when a lab network spans daemons; how stackdrill reaches the hypervisor's
    shell is never said here (see backends/libvirt/hvaccess.py)."""

    uri: str
    underlay: str = Field(description="The hypervisor's IPv4 address on the underlay.")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        problem = uri_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("underlay")
    @classmethod
    def _underlay(cls, value: str) -> str:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"not an IP address: {shown(value)}") from None
        if addr.version != 4 or addr.is_multicast or addr.is_unspecified or addr.is_loopback:
            raise ValueError(f"not a unicast IPv4 address (VXLAN over IPv4): {shown(value)}")
        return value


class Topology(Frozen):
    """A whole lab. Build it with `load_topology`, which also runs the semantic checks."""

    name: Name
    description: str = ""
    hosts: tuple[Host, ...] = Field(min_length=1)
    networks: tuple[Network, ...] = ()
    overlays: tuple[Overlay, ...] = ()
    drbd: tuple[DrbdResource, ...] = ()
    volume_groups: tuple[VolumeGroup, ...] = ()
    clusters: tuple[ClusterSpec, ...] = ()
    flavors: dict[str, Flavor] = Field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    instances: tuple[Instance, ...] = ()
    iscsi: IscsiInitiator = Field(default_factory=IscsiInitiator,
                                  description="The initiators' timeouts (volumes over iSCSI).")
    hypervisors: tuple[Hypervisor, ...] = Field(
        default=(), description="Underlay addresses of the libvirt daemons, for a lab whose "
                                "networks span several (libvirt backend only).")

    def host(self, name: str) -> Host:
        return _by_name(self.hosts, name, "host")

    def hypervisor(self, uri: str) -> Hypervisor | None:
        return next((h for h in self.hypervisors if h.uri == uri), None)

    def network(self, name: str) -> Network:
        return _by_name(self.networks, name, "network")

    def overlay(self, name: str) -> Overlay:
        return _by_name(self.overlays, name, "overlay")

    def drbd_resource(self, name: str) -> DrbdResource:
        return _by_name(self.drbd, name, "DRBD resource")

    def volume_group(self, name: str) -> VolumeGroup:
        return _by_name(self.volume_groups, name, "volume group")

    def volume(self, name: str) -> Volume:
        return _by_name(self.volumes, name, "volume")

    def instance(self, name: str) -> Instance:
        return _by_name(self.instances, name, "instance")

    def hosts_with(self, role: Role) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.has_role(role))

    def networks_for(self, purpose: NetworkPurpose) -> tuple[Network, ...]:
        return tuple(n for n in self.networks if purpose in n.purposes)

    def vg_size_gb(self, name: str) -> int | None:
        """The size of the VG's one PV (its DRBD resource or its local disk); None when
        the PV names something this topology lacks (semantic checks report that)."""
        pv = self.volume_group(name).pv
        try:
            if pv.drbd is not None:
                return self.drbd_resource(pv.drbd).size_gb
            host = self.host(pv.host or "")
        except KeyError:
            return None
        disk = next((d for d in host.disks if d.name == pv.disk), None)
        return disk.size_gb if disk else None

    def storage_network(self, a: str, b: str) -> Network:
        """The network two hosts' storage traffic (iSCSI, NBD) takes: a storage network
        both are on, else a replication one, else the management one."""
        for purpose in (NetworkPurpose.STORAGE, NetworkPurpose.REPLICATION,
                        NetworkPurpose.MANAGEMENT):
            for net in self.networks_for(purpose):
                if a in net.addresses and b in net.addresses:
                    return net
        raise KeyError(f"no network joins {a} and {b} for storage traffic")

    def replica_hosts(self, volume: str) -> tuple[str, ...]:
        """Hosts that hold a copy of the volume's data (both DRBD nodes, or the disk's host)."""
        pv = self.volume_group(self.volume(volume).vg).pv
        if pv.drbd is not None:
            return self.drbd_resource(pv.drbd).nodes
        return (pv.host,) if pv.host else ()


# Name indexes of the topologies' tuples, keyed by the tuple's identity and holding the
# tuple itself: a tuple never changes and its id cannot be reused while it is held here,
# so an index is never stale (a `model_copy` with new volumes has a new tuple). Lookups by
# name were linear, and the engine, the lab and the report make them per instance. The
# oldest index is dropped past a bound, so a long fuzz run keeps no old topologies alive.
# A lock: the real backends look names up from several threads at once (the eviction's
# iteration must not meet another thread's insertion).
_INDEXES: dict[int, tuple[tuple[object, ...], dict[str, object]]] = {}
_INDEXES_KEPT = 64
_INDEXES_LOCK = threading.Lock()


def _by_name(items: tuple[T, ...], name: str, what: str) -> T:
    """The first item called `name` (KeyError naming `what` when there is none)."""
    with _INDEXES_LOCK:
        entry = _INDEXES.get(id(items))
        if entry is None or entry[0] is not items:
            index: dict[str, object] = {}
            for item in items:
                key = getattr(item, "name", None)
                if isinstance(key, str):
                    index.setdefault(key, item)
            entry = _INDEXES[id(items)] = (items, index)
            if len(_INDEXES) > _INDEXES_KEPT:
                del _INDEXES[next(iter(_INDEXES))]
    found = entry[1].get(name)
    if found is None:
        raise KeyError(f"unknown {what} {name!r}")
    return found  # type: ignore[return-value]  # an item of `items`, so a T
