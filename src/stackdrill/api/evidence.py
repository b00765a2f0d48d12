"""What a lab shows the checks: observations, write histories, stored records, command
results. Plain typed values, the same on every backend, so one checker reads them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stackdrill.api.drivers import PowerState


@dataclass(frozen=True)
class WriteOp:
    """One write in a workload's history (Jepsen style: ok = acknowledged, fail, info = unknown)."""

    instance: str
    volume: str
    incarnation: int  # 1 for the first boot, +1 per restart elsewhere
    seq: int
    checksum: str
    invoked: float
    completed: float | None
    outcome: str  # "ok" | "fail" | "info"
    host: str


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    incarnation: int
    checksum: str


@dataclass(frozen=True)
class LvmView:
    """One host's view of a VG: what the on-disk metadata says and what is mapped and active."""

    host: str
    vg: str
    metadata_seqno: int | None
    metadata_lvs: dict[str, list[tuple[int, int]]]  # lv -> [(first PE, count)] on disk
    active_lvs: dict[str, list[tuple[int, int]]]  # lv -> [(first PE, count)] in device-mapper
    clustered: bool


@dataclass(frozen=True)
class DrbdUuids:
    """A node's data generation UUIDs, as `drbdadm show-gi` prints them (hex)."""

    current: str
    bitmap: str
    history: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrbdNodeStatus:
    """One node of a DRBD resource as `drbdadm status` (8.4 names) shows it.

    `role` Primary/Secondary/Unconfigured; `disk` UpToDate, Inconsistent, Outdated,
    Diskless, DUnknown; `connection` StandAlone, WFConnection, Connected, SyncSource,
    SyncTarget; `split_brain` once the node detected one on a reconnect."""

    role: str
    disk: str
    connection: str
    peer_role: str = "Unknown"
    peer_disk: str = "DUnknown"
    out_of_sync_kb: int = 0
    split_brain: bool = False
    running: bool = True  # DRBD is configured on the node (the host is up)
    suspended: bool = False  # I/O suspended while fencing the peer
    crashed_primary: bool = False
    uuids: DrbdUuids | None = None  # where the backend reads them
    size_kb: int | None = None  # the device's size (None: not read, or no device)

    # what a drill may expect (out_of_sync_kb: /proc/drbd's oos, what verify marked;
    # out_of_sync_pct: the same as a share of the device, which compares across backends
    # whose disks differ in size (100 while a full resync waits); suspended: 's' in its
    # flags, I/O queued by suspend-io or a fencing freeze)
    FIELDS = ("role", "disk", "connection", "peer_role", "peer_disk", "out_of_sync_kb",
              "out_of_sync_pct", "suspended")

    @property
    def out_of_sync_pct(self) -> int | None:
        """oos as a whole percentage of the device (None where its size was not read)."""
        if not self.size_kb:
            return None
        return round(100 * self.out_of_sync_kb / self.size_kb)

    def value_of(self, name: str) -> str:
        """One of FIELDS by name (a drill's expectation names them)."""
        if name not in self.FIELDS:
            raise KeyError(name)
        return str(getattr(self, name))


UNCONFIGURED = DrbdNodeStatus(role="Unconfigured", disk="Unconfigured",
                              connection="Unconfigured", running=False)


@dataclass(frozen=True)
class QuorumStatus:
    """One cluster member's view (`corosync-quorumtool -s`)."""

    quorate: bool
    members: tuple[str, ...]
    votes: int  # total votes of the members it sees
    expected_votes: int
    quorum: int | None = None  # votes needed; None where the backend does not read it
    wait_for_all: bool = False
    two_node: bool = False  # votequorum's 2Node: a lone survivor of two keeps quorum
    fencing_pending: tuple[str, ...] = ()  # members the DLM waits to see fenced


@dataclass(frozen=True)
class OverlayProbe:
    """What an operator's arping, ping, DF ping and tracepath from one instance to
    another found on the overlay."""

    src: str  # host or instance the probe ran from
    dst: str  # instance probed
    reachable: bool  # small ping answered (ARP resolved, ICMP echo came back)
    full_size_ok: bool | None = None  # DF ping of expected-MTU size answered; None: not run
    path_mtu: int | None = None  # tracepath's pmtu; None: not measured / no answer
    # the MTU an ICMP 'frag needed' (or, once cached, 'message too long') answer to the
    # DF ping named: a sending side too small for the frame says so; None: no such answer
    frag_needed_mtu: int | None = None
    arp_mac: str | None = None  # MAC the ARP reply carried; None: no reply
    expected_mac: str | None = None  # the instance's port MAC from the topology
    at: float = 0.0  # lab time of the probe

    @property
    def pair(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass(frozen=True)
class ThroughputProbe:
    """What iperf3 measured, in Mbit/s of TCP payload: from instance `src` to instance
    `dst` over the overlay, and between the hosts they ran on over the underlay network
    that carries the overlay. 0.0: the stream could not be opened or carried nothing."""

    src: str
    dst: str
    src_host: str
    dst_host: str
    overlay_mbit: float
    underlay_mbit: float
    at: float = 0.0  # lab time the probe started

    @property
    def pair(self) -> str:
        return f"{self.src}->{self.dst}"

    @property
    def ratio(self) -> float | None:
        """overlay / underlay; None when the underlay carried nothing to compare with."""
        return self.overlay_mbit / self.underlay_mbit if self.underlay_mbit > 0 else None


@dataclass(frozen=True)
class CommandResult:
    """An operator command's outcome: `ok`, what the tool said, when it ran; a probe's
    findings when it was an overlay probe that could run, or a throughput probe's."""

    ok: bool
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0
    command: str = ""  # the command line, where a real tool ran
    probe: OverlayProbe | None = None
    throughput: ThroughputProbe | None = None


@dataclass(frozen=True)
class Observation:
    """A snapshot of the lab at one moment, for checks and reports."""

    time: float
    running: Mapping[str, list[str]]  # instance -> hosts where a copy runs
    power: Mapping[str, PowerState]
    drbd: Mapping[str, Mapping[str, DrbdNodeStatus]]  # resource -> host -> status
    lvm: list[LvmView]
    quorum: Mapping[str, Mapping[str, QuorumStatus]]  # cluster -> host -> its view
    io_errors: int = 0  # writes a workload saw fail
    # resource -> nodes that detected a split brain at some time during the drill (an
    # after-sb policy that resolved it automatically leaves no trace in the final status)
    split_brains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # where a real lab's bring-up time went: stage ("boot cmp1", "provision_s"...) -> seconds
    bringup_s: Mapping[str, float] = field(default_factory=dict)
