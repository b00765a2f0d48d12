"""What every backend offers: a lab built from a topology, faults, a clock and drivers.

The recovery engine and the checks use only the names in this module, never a
backend's own, so the same engine and checks run against the simulator, network
namespaces and real VMs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from stackdrill.errors import UnsupportedError
from stackdrill.faults import Fault
from stackdrill.topology import Topology

# ---------------------------------------------------------------- declared limits

FEATURES = (
    "drbd",  # DRBD resources
    "lvm",  # volume groups and logical volumes
    "clustered-lvm",  # clvmd / lvmlockd locking (needs a cluster stack)
    "sanlock",  # lvmlockd with sanlock leases on the shared storage, not the DLM
    "cluster",  # corosync membership and quorum
    "overlay",  # VXLAN overlays
    "instances",  # instances with workloads
    "network-volumes",  # volumes reached over the network (iSCSI/NBD)
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can realise. A drill asking for more is refused before it starts."""

    faults: frozenset[str]
    features: frozenset[str]
    needs: str = ""  # what the machine must have, shown in the README's table

    def supports_fault(self, kind: str) -> bool:
        return kind in self.faults


# ---------------------------------------------------------------- time


class Clock(ABC):
    """The only source of time for engines and drills: simulated or wall clock."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since the lab started."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (the simulator runs its events meanwhile)."""

    @abstractmethod
    def wait(self, ops: Iterable[Future[Any]], timeout: float | None = None) -> set[Future[Any]]:
        """Block until at least one of `ops` is done or `timeout` passes; return the done ones."""


# ---------------------------------------------------------------- drivers


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"
    HUNG = "hung"  # powered, but not running (frozen kernel, suspended VM)
    BOOTING = "booting"
    UNKNOWN = "unknown"  # the power controller cannot tell (its own path is cut)


class PowerDriver(ABC):
    """Fencing and power: how the engine makes sure a failed host can no longer write."""

    @abstractmethod
    def state(self, host: str) -> PowerState:
        """What the power controller (IPMI, libvirt) reports, independent of the host's network."""

    @abstractmethod
    def power_off(self, host: str) -> Future[None]:
        """Cut power; the future completes once the controller confirms the host is off."""

    @abstractmethod
    def power_on(self, host: str) -> Future[None]:
        """Power on; the future completes when the host has booted (services up)."""


@dataclass(frozen=True)
class HostHealth:
    """What the control plane sees of one host right now."""

    host: str
    last_heartbeat: float | None  # lab time of the last compute-service heartbeat received
    replication_links_up: bool  # the host's storage/replication peers still see it
    power: PowerState


WITNESS_FRESH_S = 30.0  # three heartbeat intervals: a peer quieter than that reports nothing
WITNESS_AFTER_S = 10.0  # one heartbeat interval: it reported again after the host fell silent


def reporting_witness(peer_beat: float | None, host_beat: float | None, now: float) -> bool:
    """Whether a replication peer can tell the controller that it lost a host: only while
    it reports itself (a recent heartbeat, later than the host's last one). When everyone
    went quiet at once (the controller is down or cut off) no peer qualifies, and that
    silence is no evidence that the host died. Every backend's `replication_links_up`
    counts only such peers, and counts as up when there are none."""
    return peer_beat is not None and now - peer_beat <= WITNESS_FRESH_S and \
        (host_beat is None or peer_beat >= host_beat + WITNESS_AFTER_S)


@dataclass(frozen=True)
class GuestInfo:
    name: str
    running: bool


class ComputeDriver(ABC):
    """The hypervisor side: heartbeats, and the guests on each host."""

    @abstractmethod
    def health(self, host: str) -> HostHealth:
        """Heartbeat and corroborating signals for `host` (never blocks)."""

    @abstractmethod
    def guests(self, host: str) -> Future[list[GuestInfo]]:
        """Guests defined on `host`; fails if the host cannot be reached."""

    @abstractmethod
    def start(self, instance: str, host: str, volumes: dict[str, str]) -> Future[None]:
        """Define and start `instance` on `host`, its volumes attached from the given
        block paths (volume name -> path returned by the storage driver)."""

    @abstractmethod
    def destroy(self, instance: str, host: str) -> Future[None]:
        """Stop and undefine `instance` on `host` (cleanup on a returning host)."""

    @abstractmethod
    def verify(self, instance: str, host: str) -> Future[bool]:
        """The guest runs on `host` and its workload can write to its volumes."""

    def set_boot_hook(self, hook: Callable[[str, list[str]], list[str]] | None) -> None:
        """What a host's compute service asks the control plane when it starts (Nova's
        init_host): given the host and its local guests, the guests that were evacuated
        elsewhere; it destroys those before resuming the others."""
        self.boot_hook = hook


class AttachMode(StrEnum):
    LOCAL = "local"  # the target host holds a replica
    REMOTE = "remote"  # reached over the network from a host that holds one (iSCSI/NBD)


@dataclass(frozen=True)
class Replica:
    host: str
    role: str  # Primary / Secondary / (none)
    disk_state: str  # UpToDate / Outdated / Inconsistent / Diskless / DUnknown
    reachable: bool
    # When this Secondary lost its peer while the peer stayed Primary and running, if the
    # peer then acked writes it lacks (it still says UpToDate: resource-only fencing failed
    # to outdate it); None while in sync, when the primary failed first, or when nothing
    # was written since. Backends that cannot tell leave it None.
    behind_since: float | None = None


@dataclass(frozen=True)
class VolumePath:
    """Where a volume's data can be used on a host after `prepare`."""

    volume: str
    host: str
    mode: AttachMode
    served_by: str  # the host whose replica serves the data
    path: str  # block device path on `host`


class StorageDriver(ABC):
    """Replicated block storage: which replicas exist, and making a volume usable on a host."""

    @abstractmethod
    def replicas(self, volume: str) -> list[Replica]:
        """Every copy of the volume's data, with its DRBD state as seen now."""

    @abstractmethod
    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        """Make `volume` usable on `host`: promote a surviving replica (never one on `failed`),
        export/connect it when `host` holds none, activate the LV with the right lock."""

    @abstractmethod
    def release(self, volume: str, host: str) -> Future[None]:
        """Deactivate and disconnect `volume` on `host` (the failed or drained side)."""


class NetworkDriver(ABC):
    """Instance ports on the overlay, programmed through the central controller."""

    @abstractmethod
    def plug(self, instance: str, host: str) -> Future[None]:
        """Create the instance's port on `host` with its MAC/IP; update every host's FDB."""

    @abstractmethod
    def unplug(self, instance: str, host: str) -> Future[None]:
        """Remove the instance's port from `host`."""

    @abstractmethod
    def reachable(self, instance: str) -> Future[bool]:
        """Another host on the overlay reaches the instance's IP (ARP + ping)."""


@dataclass(frozen=True)
class Drivers:
    power: PowerDriver
    compute: ComputeDriver
    storage: StorageDriver
    network: NetworkDriver


# ---------------------------------------------------------------- observations


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
class Observation:
    """A snapshot of the lab at one moment, for checks and reports."""

    time: float
    running: dict[str, list[str]]  # instance -> hosts where a copy runs
    power: dict[str, PowerState]
    drbd: dict[str, dict[str, dict[str, Any]]]  # resource -> host -> drbdadm status fields
    lvm: list[LvmView]
    quorum: dict[str, dict[str, Any]]  # cluster -> {host: {"quorate": bool, "members": [...]}}
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- the lab


class Lab(ABC):
    """A topology brought to life. Always destroyed, even on errors and Ctrl-C."""

    topology: Topology
    name: str
    backend: str

    @property
    @abstractmethod
    def clock(self) -> Clock: ...

    @property
    @abstractmethod
    def drivers(self) -> Drivers: ...

    @abstractmethod
    def inject(self, fault: Fault) -> None:
        """Make the fault true now."""

    @abstractmethod
    def heal(self, fault: Fault) -> None:
        """Undo exactly what `inject` did."""

    @abstractmethod
    def call_at(self, time: float, action: Callable[[], None], label: str) -> None:
        """Run `action` at lab time `time` (faults during a recovery; never blocks)."""

    def execute(self, command: Any, label: str) -> None:
        """Run an operator command from a drill (lvm, drbdadm, a probe); results go to
        `command_results()` under `label`. Backends that cannot run it say so."""
        raise UnsupportedError(f"backend {self.backend!r} cannot run "
                               f"{getattr(command, 'tool', '?')} {getattr(command, 'op', '?')}")

    def quiesce(self) -> None:
        """Stop the workloads before the final read, so real backends' writers do not race
        the checks (a no-op where the lab's clock stops by itself, as in the simulator)."""
        return None

    def command_results(self) -> dict[str, dict[str, Any]]:
        """label -> {"ok": bool, "detail": str, ...} of every command run so far."""
        return {}

    @abstractmethod
    def history(self) -> list[WriteOp]:
        """Every write the workloads invoked, with its outcome."""

    @abstractmethod
    def stored_records(self, volume: str) -> dict[int, StoredRecord]:
        """The records on the volume as its current primary replica holds them (seq -> record)."""

    @abstractmethod
    def observe(self) -> Observation: ...

    @abstractmethod
    def trace(self) -> list[str]:
        """The event trace so far, one line per event (byte-identical for the same seed on sim)."""

    @abstractmethod
    def destroy(self) -> None:
        """Tear everything down; safe to call twice."""

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@dataclass(frozen=True)
class LabOptions:
    """What a drill asks of every backend besides the topology."""

    write_interval_s: float = 2.0  # each workload writes one record per interval
    writers: frozenset[str] | None = None  # instances running a workload (None: all)
    # where a backend whose bring-up takes minutes (real guests) says what it is doing
    progress: Callable[[str], None] | None = field(default=None, compare=False)


class Backend(ABC):
    """A way to bring a topology to life."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def available(cls) -> str | None:
        """None when this machine can run the backend, else the reason it cannot."""
        return None

    @abstractmethod
    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        """Bring the lab up."""


def shifted(line: str, shift: float) -> str:
    """A trace line `<time> ...` dated `shift` seconds earlier, never before 0: labs
    whose bring-up takes real time restart their clock when ready, and the lines of
    the bring-up then all read 0 (readers expect no negative times)."""
    stamp, _, rest = line.partition(" ")
    return f"{max(0.0, float(stamp) - shift):.6f} {rest}"
