"""Operator commands a drill can run on a lab: lvm (incl. lvmlockd's lockspace start and
stop), drbdadm, a disk swap, the cluster stack (start, stop, a fence acknowledgement),
overlay probes, an iperf3 throughput probe. Values, like faults, so backends can execute them
without knowing about drills; they live in the lab API because `Lab.execute` is what
runs them (a drill schedules them, a backend carries them out)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackdrill.topology.lvm_names import LvName, VgName
from stackdrill.yamlio import register_union_tags


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


VG_OPS = ("refresh", "lock-start", "lock-stop")  # lvm operations on a whole VG


class LvmCommand(Frozen):
    """An lvm command on one host. `lock-start`/`lock-stop` are `vgchange --lock-start`/
    `--lock-stop VG`: join or leave the VG's lvmlockd lockspace on that host."""

    tool: Literal["lvm"] = "lvm"
    host: str
    op: Literal["lvcreate", "lvextend", "lvremove", "activate", "deactivate", "refresh",
                "lock-start", "lock-stop"]
    vg: VgName
    lv: LvName | None = None
    extents: int | None = Field(default=None, gt=0)
    mode: Literal["ex", "sh", "local"] = "local"

    @model_validator(mode="after")
    def _whole_vg_ops_name_no_lv(self) -> LvmCommand:
        if self.op in VG_OPS and (self.lv is not None or self.extents is not None):
            raise ValueError(f"{self.op} acts on the whole VG: give no lv or extents")
        return self


class DrbdCommand(Frozen):
    tool: Literal["drbdadm"] = "drbdadm"
    host: str
    op: Literal["primary", "secondary", "connect", "disconnect", "attach", "detach",
                "discard-my-data", "outdate", "verify", "invalidate", "invalidate-remote",
                "suspend-io", "resume-io", "pause-sync", "resume-sync"]
    resource: str
    force: bool = False


class DiskCommand(Frozen):
    """A backing disk handled behind DRBD's back. `replace`: a new, empty disk in the slot.
    `save`: a whole copy of the disk (its data and DRBD's internal meta-data) kept aside;
    `restore`: that copy written back over the disk, as an operator restoring a backup or a
    snapshot would (drbd9-tests' revert-older-data). Both need the disk detached from DRBD:
    a copy of a disk in use is fuzzy, and a restore under a running DRBD is corruption."""

    tool: Literal["disk"] = "disk"
    host: str
    op: Literal["replace", "save", "restore"]
    disk: str


class ClusterCommand(Frozen):
    """The cluster stack, as an operator drives it. `start`/`stop` on `host`: corosync and
    dlm_controld start (the node joins the membership) or stop cleanly (it leaves, and
    is not fenced for it); `fence_ack_manual`: the operator swears `victim` is off."""

    tool: Literal["cluster"] = "cluster"
    op: Literal["fence_ack_manual", "start", "stop"]
    cluster: str
    victim: str | None = Field(default=None, description="fence_ack_manual: the fenced node")
    host: str | None = Field(default=None, description="start, stop: the node")

    @model_validator(mode="after")
    def _names_its_node(self) -> ClusterCommand:
        if self.op == "fence_ack_manual" and (self.victim is None or self.host is not None):
            raise ValueError("fence_ack_manual names the fenced node as victim (and no host)")
        if self.op != "fence_ack_manual" and (self.host is None or self.victim is not None):
            raise ValueError(f"{self.op} names the node as host (and no victim)")
        return self

    @property
    def node(self) -> str:
        """The node the command is about."""
        return self.host or self.victim or ""


class ProbeCommand(Frozen):
    """Overlay checks run from inside one instance toward another, as an operator would:
    arping, a small ping, a full-size ping with DF set, tracepath. The result feeds the
    overlay expectations."""

    tool: Literal["probe"] = "probe"
    op: Literal["overlay"] = "overlay"
    src: str = Field(description="instance the probe runs in")
    dst: str = Field(description="instance whose overlay IP is probed")
    label: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")


class ThroughputCommand(Frozen):
    """iperf3 (one TCP stream, `seconds` long) from instance `src` to instance `dst`
    across their overlay, then between the hosts they run on over the overlay's underlay
    network: what the overlay carries against what its underlay does (the seed measured
    ~0.91 with iperf on ~10 Mbit/s cloud links). The result feeds the throughput
    expectation."""

    tool: Literal["iperf3"] = "iperf3"
    op: Literal["throughput"] = "throughput"
    src: str = Field(description="instance the iperf3 client runs in")
    dst: str = Field(description="instance whose overlay IP the client sends to")
    label: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    seconds: float = Field(default=3.0, ge=1.0, le=30.0, description="each of the two runs")


Command = Annotated[
    LvmCommand | DrbdCommand | DiskCommand | ClusterCommand | ProbeCommand
    | ThroughputCommand,
    Field(discriminator="tool"),
]
COMMAND_TOOLS = ("lvm", "drbdadm", "disk", "cluster", "probe", "iperf3")  # the union's tags
register_union_tags(set(COMMAND_TOOLS))


def step_label(index: int) -> str:
    """The label of schedule[index]'s command when it is not a probe."""
    return f"step-{index}"


def command_label(index: int, command: Command) -> str:
    """The label a schedule's command runs under, and its result is found by: a probe's
    own label, `step-INDEX` for every other tool."""
    if isinstance(command, ProbeCommand | ThroughputCommand):
        return command.label
    return step_label(index)


def command_summary(command: Command) -> str:
    """One line naming a command for a person: 'lvm lvcreate on alice'."""
    where = getattr(command, "host", None) or getattr(command, "src", None) \
        or getattr(command, "cluster", "")
    return f"{command.tool} {command.op} on {where}"

