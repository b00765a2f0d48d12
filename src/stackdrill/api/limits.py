"""Declared limits: what a backend can realise. A drill asking for more is refused with the
reason before anything starts; a scenario is skipped with it. Nothing is silently left out."""

from __future__ import annotations

from dataclasses import dataclass

FEATURES = (
    "drbd",  # DRBD resources
    "drbd-refused-settings",  # DRBD settings its kernel refuses at bring-up (a 2nd Primary...)
    "lvm",  # volume groups and logical volumes
    "clustered-lvm",  # clvmd / lvmlockd locking (needs a cluster stack)
    "sanlock",  # lvmlockd with sanlock leases on the shared storage, not the DLM
    "cluster",  # corosync membership and quorum
    "cluster-power-fencing",  # a cluster whose fence agent powers nodes off (fencing: power)
    "overlay",  # VXLAN overlays
    "overlay-mtu-over-underlay",  # an overlay MTU above its underlay's minus VXLAN's 50 bytes
    "overlay-switches",  # an overlay's `announce` or `guest_ipv6` turned off
    "instances",  # instances with workloads
    "network-volumes",  # volumes reached over the network (iSCSI/NBD)
    "iscsi-timeouts",  # the initiators' open-iscsi timeouts other than the defaults
    "throughput-under-loss",  # iperf3 in a drill that loses or refuses frames (real TCP)
    "disk-swap",  # the `disk replace` command: a new, empty disk in a running host's slot
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can realise, and how its labs live.

    `faults` is derived from the backend's own table of fault handlers, so the limits a
    drill is refused by cannot drift from what is implemented. `in_process` says the lab
    exists only inside the process that made it (the simulator): a named lab is then
    replayed from its recorded steps by every command, and its name needs no uniqueness
    across processes."""

    faults: frozenset[str]
    features: frozenset[str]
    needs: str = ""  # what the machine must have, shown in the README's table
    in_process: bool = False

    def supports_fault(self, kind: str) -> bool:
        return kind in self.faults
