"""The four driver interfaces the recovery engine uses, and the values they exchange.

Every backend provides power, compute, storage and network drivers; the engine and the
checks know only these names. An operation returns a `concurrent.futures.Future` that
fails with a `DriverError` (or `TransientDriverError`) when the lab refuses it; any other
exception is a bug in the backend and is not taken for a failed recovery step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum

from stackdrill.errors import StackdrillError


class DriverError(StackdrillError):
    """The lab refused a driver operation (host down, replica unreachable, guest gone)."""


class TransientDriverError(DriverError):
    """A driver operation failed for now and may succeed when asked again (an agent too
    busy to answer, a replica that has not met its peer since it booted)."""


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
class Witness:
    """One independent observer of a host's storage/replication links, as the control
    plane hears it: a replication peer (it reports with its own heartbeat) or the switch
    port's carrier (always reporting). Whether its word counts is recovery's detection
    rule, not the backend's."""

    name: str
    sees_host: bool
    last_report: float | None  # lab time it last reported to the controller; None: never


@dataclass(frozen=True)
class HostHealth:
    """What the control plane sees of one host right now (cheap: asked every tick)."""

    host: str
    last_heartbeat: float | None  # lab time of the last compute-service heartbeat received
    power: PowerState


@dataclass(frozen=True)
class GuestInfo:
    name: str
    running: bool


BootHook = Callable[[str, list[str]], list[str]]


class ComputeDriver(ABC):
    """The hypervisor side: heartbeats, and the guests on each host."""

    boot_hook: BootHook | None = None

    @abstractmethod
    def health(self, host: str) -> HostHealth:
        """Heartbeat and corroborating signals for `host` (never blocks)."""

    @abstractmethod
    def witnesses(self, host: str) -> tuple[Witness, ...]:
        """Who can tell whether `host`'s storage/replication links still reach it (never
        blocks). Asked only once the host's heartbeats stopped: it may cost more."""

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

    def set_boot_hook(self, hook: BootHook | None) -> None:
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
    role: str  # Primary / Secondary / (local) / (none)
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
