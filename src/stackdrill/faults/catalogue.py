"""Fault values. A fault names what breaks; `heal` of the same value undoes it.

Faults are frozen pydantic models with a `kind` tag, so they can be written in a
drill, logged, replayed, compared and shown in a report without any backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from stackdrill.yamlio import register_union_tags


class _Fault(BaseModel):
    # no inf/nan anywhere: a fault is a finite thing the backends turn into tc/nft numbers
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def targets(self) -> tuple[str, ...]:
        """Hosts this fault touches (for reports and for checks against the topology)."""
        host = getattr(self, "host", None)
        return (host,) if host else ()


class HostCrash(_Fault):
    """Power cut: the host stops at once; disks keep what reached them; no clean shutdown."""

    kind: Literal["host_crash"] = "host_crash"
    host: str
    power_back: bool = Field(
        default=True, description="heal powers the host on again (a returning host)"
    )


class HostHang(_Fault):
    """The kernel freezes: no I/O, no heartbeats, links stay up (a suspended VM)."""

    kind: Literal["host_hang"] = "host_hang"
    host: str


class PowerControllerDown(_Fault):
    """The host's BMC (IPMI/Redfish) cannot be reached: power on/off requests fail and its
    power state reads unknown. The host itself keeps running (or stays hung/off)."""

    kind: Literal["power_controller_down"] = "power_controller_down"
    host: str


class HostReboot(_Fault):
    """A clean reboot: services stop, the host boots for its boot time, heals by itself."""

    kind: Literal["host_reboot"] = "host_reboot"
    host: str


class DiskFailure(_Fault):
    """Every I/O on the disk returns an error (DRBD's on-io-error decides what follows)."""

    kind: Literal["disk_failure"] = "disk_failure"
    host: str
    disk: str


class SlowDisk(_Fault):
    kind: Literal["slow_disk"] = "slow_disk"
    host: str
    disk: str
    latency_ms: float = Field(gt=0, le=60_000, description="added per I/O, at most a minute")


# the first MiB of a device holds a PV's label and LVM metadata: corruption of "data"
# starts past it (a damaged VG label is another situation)
FIRST_DATA_BLOCK = 256
BLOCK_BYTES = 4096


class CorruptBlocks(_Fault):
    """Silent corruption: `blocks` 4 KiB blocks of the disk are overwritten behind every
    layer's back, with no I/O error and nothing logged (a failing disk's firmware, a stray
    `dd` onto a DRBD backing disk, Jepsen's bitflip). They are spread evenly over the data
    the disk holds (a DRBD resource's data area, past its first MiB). Nothing heals it:
    only a resync from a good replica does (drbdadm verify finds them, invalidate or a
    reconnect copies them)."""

    kind: Literal["corrupt_blocks"] = "corrupt_blocks"
    host: str
    disk: str
    blocks: int = Field(default=8, ge=1, le=4096)

    def addresses(self, data_blocks: int) -> list[int]:
        """The 4 KiB block addresses it overwrites on a device of `data_blocks` blocks:
        evenly spread past the first MiB, the same on every backend for the same size."""
        span = data_blocks - FIRST_DATA_BLOCK
        if span < self.blocks:
            raise ValueError(f"a {data_blocks}-block device has no {self.blocks} data blocks")
        step = span // self.blocks
        return [FIRST_DATA_BLOCK + i * step + step // 2 for i in range(self.blocks)]


class InstanceCrash(_Fault):
    """One instance's process dies (SIGKILL of its qemu or workload process) on the host it
    runs on at that moment; the host, its other guests and its heartbeats stay up. Pacemaker
    CTS's ResourceRecover: only a monitor that looks at the instance itself sees it, not
    host-level detection. Nothing heals it: a crash is not undone, the instance is started
    again (by the recovery engine or an operator)."""

    kind: Literal["instance_crash"] = "instance_crash"
    instance: str

    def targets(self) -> tuple[str, ...]:
        """No host is named: the instance's host is wherever it runs when it dies."""
        return ()


class LinkDown(_Fault):
    """The host's link to one underlay network loses carrier."""

    kind: Literal["link_down"] = "link_down"
    host: str
    network: str


class Partition(_Fault):
    """Hosts in different groups cannot reach each other on the network (or on all networks)."""

    kind: Literal["partition"] = "partition"
    groups: tuple[tuple[str, ...], ...] = Field(min_length=2)
    network: str | None = Field(default=None, description="one network, or all when omitted")

    def targets(self) -> tuple[str, ...]:
        return tuple(h for g in self.groups for h in g)


class Cut(_Fault):
    """Traffic between chosen pairs of hosts is dropped while every other pair still talks:
    a partition that is not a split into groups (Jepsen's bridge and majorities ring). With
    `one_way`, only what the first host of a pair sends to the second is dropped (Jepsen's
    grudge): datagrams the second sends still arrive, but no conversation between the two
    survives (a TCP handshake or a ping needs both ways)."""

    kind: Literal["cut"] = "cut"
    pairs: tuple[tuple[str, str], ...] = Field(min_length=1)
    network: str | None = Field(default=None, description="one network, or all when omitted")
    one_way: bool = False

    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for pair in self.pairs for h in pair))

    def directed(self) -> tuple[tuple[str, str], ...]:
        """(sender, receiver) of every dropped direction."""
        back = () if self.one_way else tuple((b, a) for a, b in self.pairs)
        return tuple(dict.fromkeys((*self.pairs, *back)))


class PacketLoss(_Fault):
    """Random loss of packets leaving the host on a network, each with this probability."""

    kind: Literal["packet_loss"] = "packet_loss"
    host: str
    network: str
    probability: float = Field(gt=0, le=1)


class RateLimit(_Fault):
    """The host's link on a network is limited to this rate (tbf)."""

    kind: Literal["rate_limit"] = "rate_limit"
    host: str
    network: str
    mbit: float = Field(gt=0, le=100_000, description="at most 100 Gbit/s")


class UnderlayMtu(_Fault):
    """The host's underlay MTU is lowered. Full-size encapsulated frames toward the host
    vanish without an ICMP (a path-MTU blackhole); those the host sends are refused by its
    own VXLAN device with ICMP 'frag needed' where the MTU is lowered on the host's
    interface (sim, libvirt) and vanish where it is lowered at the switch port (netns)."""

    kind: Literal["underlay_mtu"] = "underlay_mtu"
    host: str
    network: str
    mtu: int = Field(ge=576)


class OverlayFdbStale(_Fault):
    """The overlay controller stops pushing forwarding entries to this host (stale FDB)."""

    kind: Literal["overlay_fdb_stale"] = "overlay_fdb_stale"
    host: str
    overlay: str


class ClockSkew(_Fault):
    """The host's wall clock is stepped by `seconds` (Jepsen's clock nemesis, a bump);
    healed, it is stepped back. DRBD, corosync and the DLM time themselves with
    monotonic clocks, and the lab times the workloads and heartbeats itself, so nothing a
    verdict rests on may move: the drill proves it."""

    kind: Literal["clock_skew"] = "clock_skew"
    host: str
    seconds: int = Field(ge=-86_400, le=86_400, description="the step, at most a day "
                         "either way; not 0")

    @model_validator(mode="after")
    def _steps(self) -> ClockSkew:
        if self.seconds == 0:
            raise ValueError("a clock skew of 0 seconds changes nothing")
        return self


class DaemonKill(_Fault):
    """SIGKILL of one daemon of the host's storage stack, the host left up (lvm2's
    lvmlockd tests, CTS's ComponentFail); healed, the daemon is started again as its
    service manager would restart it. What it held is the real software's business: a
    killed lvmlockd leaves its DLM locks behind (recorded: lvmlockd-killed)."""

    kind: Literal["daemon_kill"] = "daemon_kill"
    host: str
    daemon: Literal["lvmlockd"] = "lvmlockd"


class TunnelEndpointDown(_Fault):
    """The host's VXLAN tunnel endpoint is gone; its underlay still works."""

    kind: Literal["tunnel_endpoint_down"] = "tunnel_endpoint_down"
    host: str
    overlay: str


Fault = Annotated[
    HostCrash | HostHang | HostReboot | DiskFailure | SlowDisk | CorruptBlocks | InstanceCrash
    | LinkDown
    | Partition | Cut
    | PacketLoss | RateLimit | UnderlayMtu | OverlayFdbStale | TunnelEndpointDown
    | PowerControllerDown | ClockSkew | DaemonKill,
    Field(discriminator="kind"),
]
FaultAdapter: TypeAdapter[Fault] = TypeAdapter(Fault)

FAULT_KINDS: tuple[str, ...] = (
    "host_crash", "host_hang", "host_reboot", "disk_failure", "slow_disk", "corrupt_blocks",
    "instance_crash", "link_down", "partition", "cut", "packet_loss", "rate_limit",
    "underlay_mtu", "overlay_fdb_stale", "tunnel_endpoint_down", "power_controller_down",
    "clock_skew", "daemon_kill",
)
register_union_tags(set(FAULT_KINDS))


# Faults nothing undoes, and why (what a heal of one in a drill is refused with).
UNHEALABLE_WHY: dict[str, str] = {
    "corrupt_blocks": "only a resync from a good replica repairs the blocks (drbdadm "
                      "invalidate, or verify and reconnect)",
    "instance_crash": "a killed process is not brought back by undoing anything: the "
                      "instance is started again (the recovery engine's instance monitor, "
                      "or an operator)",
}
UNHEALABLE = frozenset(UNHEALABLE_WHY)


def fault_kinds(table: Iterable[type[BaseModel]]) -> frozenset[str]:
    """The `kind` tags of the fault classes a backend's handler table has entries for: a
    backend declares exactly the faults it implements."""
    return frozenset(str(cls.model_fields["kind"].default) for cls in table)


def describe(fault: Fault) -> str:
    """One line a person reads in a timeline: 'host_crash host=cmp1'."""
    fields = fault.model_dump(exclude={"kind"})
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        shown = value
        if isinstance(value, (list, tuple)):
            shown = "|".join(",".join(g) if isinstance(g, (list, tuple)) else str(g) for g in value)
        parts.append(f"{key}={shown}")
    return f"{fault.kind} " + " ".join(parts)
