"""How the engine behaves: detection timings, parallelism, safety overrides, placement.

Two profiles exist. `stackdrill` is the bundled engine's default. `masakari`
reproduces the defaults operators run today, as the baseline the benchmark
compares against: Nova counts a compute service down after `service_down_time`
= 60 s without a heartbeat; Masakari's engine, after disabling the compute
service, waits `wait_period_after_service_update` = 180 s before evacuating;
it evacuates each failed host's instances with `host_failure_recovery_threads` = 3
(a thread pool per host-failure notification, several failed hosts side by side).

How many flows run at once follows what the lab can take, as the field bounds it, not
one global number: at most `per_target_host` flows land on one compute host (Nova's
`max_concurrent_builds`, 10 per nova-compute) and at most `per_storage_backend` flows
use one storage backend — a DRBD resource, or the host exporting a plain VG over iSCSI
(default: twice the vCPUs of its server, Pacemaker's `node-action-limit` default for one
node's concurrent actions). `parallel`, when given, caps the total on top (`1` is the
seed's sequential script); `per_failed_host` caps one failed host's flows (Masakari's
`host_failure_recovery_threads`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Profile(StrEnum):
    STACKDRILL = "stackdrill"
    MASAKARI = "masakari"


class Mode(StrEnum):
    EVACUATE = "evacuate"
    MAINTENANCE = "maintenance"


class FenceAction(StrEnum):
    """What becomes of a fenced host once nothing is left to evacuate from it. `off` (the
    default, Masakari's): it stays off for the operator, since a host that failed may fail
    again and its disks may be what failed. `reboot` (Pacemaker's stonith-action default):
    powered on again, it rejoins through the returning-host path (stale guests cleaned,
    its DRBD replica back as Secondary and resynced), so a pair is not left degraded."""

    OFF = "off"
    REBOOT = "reboot"


class RecoveryMethod(StrEnum):
    """Masakari's failover-segment recovery methods (where evacuated instances may go)."""

    AUTO = "auto"  # any non-reserved compute host
    RESERVED_HOST = "reserved_host"  # only reserved (spare) hosts
    AUTO_PRIORITY = "auto_priority"  # non-reserved first, spares when nothing else fits
    RH_PRIORITY = "rh_priority"  # spares first, then any other host


@dataclass(frozen=True)
class RecoveryConfig:
    """Everything a drill or the CLI may tune. Times are lab seconds."""

    grace_s: float = 30.0  # heartbeat age after which a host is suspected (3 missed beats)
    heartbeat_interval_s: float = 10.0
    poll_s: float = 1.0  # how often the monitor looks at heartbeats while idle
    parallel: int | None = None  # cap on flows in flight at once; None: capacity decides
    per_target_host: int = 10  # flows landing on one compute host (Nova max_concurrent_builds)
    per_storage_backend: int | None = None  # flows on one storage backend; None: 2 x vCPUs
    per_failed_host: int | None = None  # flows for one failed host's instances; None: no cap
    assume_fenced: bool = False  # the operator vouches the failed hosts are off
    reserved_hosts: tuple[str, ...] = ()  # spares; default: hosts marked reserved
    recovery_method: RecoveryMethod = RecoveryMethod.AUTO_PRIORITY
    profile: Profile = Profile.STACKDRILL
    mode: Mode = Mode.EVACUATE
    wait_after_service_update_s: float = 0.0  # Masakari waits 180 s here
    fence_timeout_s: float = 60.0  # power-off not confirmed by then: host is unfenceable
    op_timeout_s: float = 300.0  # one storage/compute/network operation
    verify_retries: int = 3
    retry_delay_s: float = 10.0  # pause before a failed flow is tried again
    cpu_allocation_ratio: float = 16.0  # Nova's initial_cpu_allocation_ratio
    ram_allocation_ratio: float = 1.5  # Nova's initial_ram_allocation_ratio
    stop_when_idle: bool = True  # return before `until` once every failure seen is handled
    resume_guests_state_on_host_boot: bool = True
    maintenance_move: bool = True  # drain moves guests when a target exists; else stops them
    maintenance_reboot: bool = True  # drain reboots the drained host through the power driver
    fence_on_isolation: bool = False  # policy: a host that only lost its management link is
    #                                   fenced and evacuated (default: left alone)
    fence_action: FenceAction = FenceAction.OFF  # a fenced host, once evacuated
    # The instance monitor (Masakari's instance monitor, Pacemaker's resource monitor): an
    # instance that dies on a host that stays up is started again there. Masakari's
    # monitor hears libvirt's lifecycle events at once; polling every 10 s is its
    # introspective monitor's guest_monitoring_interval. After `instance_max_restarts`
    # restarts within `instance_restart_window_s` it is left for the operator (Pacemaker's
    # migration-threshold over its failure-timeout).
    instance_monitor: bool = True
    instance_check_interval_s: float = 10.0
    instance_max_restarts: int = 3
    instance_restart_window_s: float = 600.0
    stop_after_steps: int | None = None  # test hook: raise EngineKilled after N journal steps
    # the inventory's lease (lease.py), in wall-clock seconds: a holder that stops renewing
    # loses it after lease_ttl_s; another engine waits up to lease_wait_s, then refuses
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 0.0

    def __post_init__(self) -> None:
        # accept the plain strings a drill file or the CLI gives
        object.__setattr__(self, "profile", Profile(self.profile))
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "recovery_method", RecoveryMethod(self.recovery_method))
        object.__setattr__(self, "fence_action", FenceAction(self.fence_action))
        object.__setattr__(self, "reserved_hosts", tuple(self.reserved_hosts))
        for name in ("parallel", "per_target_host", "per_storage_backend", "per_failed_host"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.grace_s <= 0 or self.poll_s <= 0 or self.heartbeat_interval_s <= 0:
            raise ValueError("grace_s, poll_s and heartbeat_interval_s must be positive")
        if self.instance_check_interval_s <= 0 or self.instance_restart_window_s <= 0:
            raise ValueError("instance_check_interval_s and instance_restart_window_s must "
                             "be positive")
        if self.lease_ttl_s <= 0 or self.lease_wait_s < 0:
            raise ValueError("lease_ttl_s must be positive and lease_wait_s not negative")
        if self.instance_max_restarts < 0:
            raise ValueError(f"instance_max_restarts must be at least 0, got "
                             f"{self.instance_max_restarts}")

    def describe_parallelism(self) -> str:
        """What bounds the flows in flight, in words (the CLI's help and dry run)."""
        backend = ("2 x its server's vCPUs" if self.per_storage_backend is None
                   else str(self.per_storage_backend))
        per = f"{self.per_target_host} per target host, {backend} per storage backend"
        if self.per_failed_host is not None:
            per += f", {self.per_failed_host} per failed host"
        return per if self.parallel is None else f"at most {self.parallel}, and {per}"

    @classmethod
    def masakari(cls, **overrides: object) -> RecoveryConfig:
        """The Masakari-like baseline: Nova/Masakari documented defaults."""
        base = cls(
            grace_s=60.0,  # nova service_down_time
            heartbeat_interval_s=10.0,  # nova report_interval
            poll_s=10.0,
            # masakari host_failure_recovery_threads: EvacuateInstancesTask.execute makes a
            # GreenPool of 3 per host-failure notification, and the engine handles each
            # failed host's notification in a thread of its own: 3 per failed host, not 3
            parallel=None,
            per_failed_host=3,
            wait_after_service_update_s=180.0,  # masakari wait_period_after_service_update
            profile=Profile.MASAKARI,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides: object) -> RecoveryConfig:
        if Profile(profile) is Profile.MASAKARI:
            return cls.masakari(**overrides)
        return replace(cls(), **overrides)  # type: ignore[arg-type]
