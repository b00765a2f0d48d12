"""Operator commands a drill can run on a lab: lvm, drbdadm, a disk swap, a fence
acknowledgement, overlay probes. Values, like faults, so backends can execute them
without knowing about drills; they live in the lab API because `Lab.execute` is what
runs them (a drill schedules them, a backend carries them out)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackdrill.topology.lvm_names import LvName, VgName
from stackdrill.yamlio import register_union_tags


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LvmCommand(Frozen):
    tool: Literal["lvm"] = "lvm"
    host: str
    op: Literal["lvcreate", "lvextend", "lvremove", "activate", "deactivate", "refresh"]
    vg: VgName
    lv: LvName | None = None
    extents: int | None = Field(default=None, gt=0)
    mode: Literal["ex", "sh", "local"] = "local"


class DrbdCommand(Frozen):
    tool: Literal["drbdadm"] = "drbdadm"
    host: str
    op: Literal["primary", "secondary", "connect", "disconnect", "attach", "detach",
                "discard-my-data", "outdate"]
    resource: str
    force: bool = False


class DiskCommand(Frozen):
    tool: Literal["disk"] = "disk"
    host: str
    op: Literal["replace"]
    disk: str


class ClusterCommand(Frozen):
    tool: Literal["cluster"] = "cluster"
    op: Literal["fence_ack_manual"]
    cluster: str
    victim: str


class ProbeCommand(Frozen):
    """Overlay checks run from inside one instance toward another, as an operator would:
    arping, a small ping, a full-size ping with DF set, tracepath. The result feeds the
    overlay expectations."""

    tool: Literal["probe"] = "probe"
    op: Literal["overlay"] = "overlay"
    src: str = Field(description="instance the probe runs in")
    dst: str = Field(description="instance whose overlay IP is probed")
    label: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")


Command = Annotated[
    LvmCommand | DrbdCommand | DiskCommand | ClusterCommand | ProbeCommand,
    Field(discriminator="tool"),
]
register_union_tags({"lvm", "drbdadm", "disk", "cluster", "probe"})
