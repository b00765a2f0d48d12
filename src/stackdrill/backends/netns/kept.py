"""A netns lab kept on purpose (`run --keep`): what stands, what stopped, how to reach it.

A kept lab outlives the process that built it, as a containerlab lab outlives `clab
deploy`. What the kernel holds stands as the run left it: namespaces, links, the
overlay's VXLAN devices and static FDB, the faults in force (nftables, tc). The volume
servers (nbdkit) are restarted detached and keep serving. What lived in the owner
process cannot: the heartbeat receiver, the workloads' history readers and the overlay
controller; so the heartbeat senders and the workloads are stopped and the lab says so
(it is frozen). The description is written next to the lab's volumes and read by
`status` through `NetnsBackend.describe_kept` (`clab inspect`'s counterpart).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stackdrill.backends.netns import names as naming
from stackdrill.backends.netns import nsops
from stackdrill.faults import describe as describe_fault

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

FILE = "kept.json"
FROZEN = ("frozen: the heartbeats and workloads stopped when the run exited (their "
          "history is in the run's report){servers}; links, overlay and faults in force "
          "stand as the run left them")


@dataclass(frozen=True)
class KeptHost:
    name: str
    namespace: str
    power: str  # at the moment the lab was kept
    addresses: dict[str, str]  # network -> address


@dataclass(frozen=True)
class KeptInstance:
    name: str
    namespace: str
    host: str | None  # whose overlay bridge its port is on
    ip: str | None
    overlay: str | None


@dataclass(frozen=True)
class KeptVolume:
    name: str
    uri: str
    host: str  # the storage host serving it
    file: str  # the backing file (records readable without any server)
    server_pid: int | None  # the detached nbdkit, None when its host was off


@dataclass(frozen=True)
class KeptLab:
    lab_name: str
    lab_id: str
    topology: str
    kept_at: str  # wall-clock time, for a person reading `status`
    switch_ns: str
    hosts: list[KeptHost] = field(default_factory=list)
    instances: list[KeptInstance] = field(default_factory=list)
    volumes: list[KeptVolume] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # in force when kept

    def write(self, state_dir: Path) -> None:
        tmp = state_dir / f"{FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(state_dir / FILE)

    @classmethod
    def read(cls, state_dir: Path) -> KeptLab | None:
        try:
            data = json.loads((state_dir / FILE).read_text())
            return cls(**{**data,
                          "hosts": [KeptHost(**h) for h in data["hosts"]],
                          "instances": [KeptInstance(**i) for i in data["instances"]],
                          "volumes": [KeptVolume(**v) for v in data["volumes"]]})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def render(self) -> str:
        """What `status` shows: how to reach every part, and what is still running."""
        lines = [f"kept netns lab {self.lab_name!r} (slot {self.lab_id}, topology "
                 f"{self.topology}, kept {self.kept_at}); remove it with "
                 f"`stackdrill down --lab {self.lab_name}`",
                 "  " + FROZEN.format(servers="; the volume servers keep serving"
                                      if self.volumes else ""),
                 "  hosts (`ip netns exec NAMESPACE CMD`, testinfra `netns://NAMESPACE`):"]
        for h in self.hosts:
            addrs = ", ".join(f"{net} {addr}" for net, addr in sorted(h.addresses.items()))
            lines.append(f"    {h.name:<10} {h.namespace:<24} power {h.power:<8} {addrs}")
        if self.instances:
            lines.append("  instances:")
        for i in self.instances:
            where = f"on {i.host}" if i.host else "unplugged"
            addr = f"{i.ip} on overlay {i.overlay}" if i.ip else "no overlay address"
            lines.append(f"    {i.name:<10} {i.namespace:<24} {where}, {addr}")
        if self.volumes:
            lines.append("  volumes:")
        for v in self.volumes:
            ns = naming.LabNames(self.lab_id).host_ns(v.host)
            serving = (f"served by nbdkit pid {v.server_pid} in {ns}"
                       if v.server_pid is not None and v.server_pid in nsops.ns_pids(ns)
                       else f"not served ({v.host} was off or its server stopped)")
            lines.append(f"    {v.name:<10} {v.uri} {serving}; file {v.file}")
        lines.append(f"  switch: {self.switch_ns}")
        lines.append("  faults in force: " + ("; ".join(self.faults) or "none"))
        return "\n".join(lines)


def describe(lab: NetnsLab, server_pids: dict[str, int | None]) -> KeptLab:
    """The lab as it stands now, with the pids of its detached volume servers."""
    names, topo = lab.names, lab.topology
    hosts = [KeptHost(h.name, names.host_ns(h.name), lab.power[h.name].value,
                      {lk.network: lk.address for lk in lab.underlay.host_links(h.name)})
             for h in topo.hosts]
    instances = [KeptInstance(i.name, names.instance_ns(i.name),
                              lab.instances.plugged.get(i.name), i.ip, i.overlay)
                 for i in topo.instances]
    volumes = [KeptVolume(v, e.uri, e.host, str(e.path), server_pids.get(v))
               for v, e in sorted(lab.volumes.exports.items())]
    return KeptLab(lab.name, names.lab_id, topo.name, time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                   names.switch_ns, hosts, instances, volumes,
                   [describe_fault(f) for f in lab.faults.active])
