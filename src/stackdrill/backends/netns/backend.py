"""The netns backend's declaration: what it can realise and whether this machine can run it.

Kept free of pyroute2 imports so `available()` can explain what is missing instead of
failing with an ImportError.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import ClassVar

from stackdrill.api import Backend, Capabilities, Lab, LabOptions
from stackdrill.backends.netns.faults import FAULT_KINDS
from stackdrill.topology import Topology

# Plain volume groups are realised as sparse files served over NBD (no device-mapper
# here): enough for volumes, not for LVM commands or checks, so "lvm" is not declared.
# Nor "iscsi-timeouts": the workload's own NBD client reconnects, with no initiator timeouts.
# An overlay MTU above its underlay's is built as the operator set it and the kernel does
# the rest (clamps the VXLAN device, drops full-size frames at the bridge): recorded as
# the conformance situation vxlan-mtu-overlay-over-underlay.
FEATURES = frozenset({"overlay", "overlay-switches", "instances", "network-volumes",
                      "throughput-under-loss", "overlay-mtu-over-underlay"})
COMMANDS = ("ip", "nft", "nbdkit", "bash", "ping")  # tc and ethtool: through pyroute2


class NetnsBackend(Backend):
    """Real kernel networking on this machine: hosts are network namespaces."""

    name: ClassVar[str] = "netns"
    capabilities: ClassVar[Capabilities] = Capabilities(
        faults=FAULT_KINDS, features=FEATURES,
        needs="root; kernel with netns, veth, bridge, vxlan, ifb, nftables; pyroute2; "
              "iproute2, nftables, nbdkit (scripts/system-packages-netns.txt)")

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return ("the netns backend needs root (network namespaces, veth, nftables); "
                    "run as root or use the default sim backend")
        if importlib.util.find_spec("pyroute2") is None:
            return "the netns backend needs pyroute2: pip install 'stackdrill[netns]'"
        missing = [c for c in COMMANDS if shutil.which(c) is None]
        if missing:
            return (f"the netns backend needs the commands {', '.join(missing)}: install "
                    "the packages in scripts/system-packages-netns.txt")
        return None

    @classmethod
    def cleanup_all(cls) -> list[str]:
        """`stackdrill down --all`: remove leftovers of netns labs whose owning process is
        gone (namespaces, stray interfaces, state directories); never anything else, and
        never a lab kept on purpose: `down --all` is what CI and scripts run to clear
        crashed runs, while a kept lab is someone's, kept for inspection (maybe from
        another checkout: slots are machine-wide). It goes by name (`teardown`)."""
        from stackdrill.backends.netns.cleanup import down_all

        report = down_all(include_live=False, include_kept=False)
        return report.namespaces + report.interfaces + report.state_dirs

    @classmethod
    def teardown(cls, lab_name: str) -> list[str]:
        """`stackdrill down --lab NAME`: remove the netns labs called NAME that no running
        process owns: kept ones and crashed ones (a live lab tears itself down when it
        exits), with everything running in their namespaces."""
        from stackdrill.backends.netns.cleanup import remove_named

        return remove_named(lab_name)

    @classmethod
    def kept_labs(cls) -> list[str]:
        from stackdrill.backends.netns.names import kept_slots

        return sorted({r.lab_name for r in kept_slots()})

    @classmethod
    def describe_kept(cls, lab_name: str) -> str | None:
        """Namespaces (for `ip netns exec` and testinfra's `netns://`), addresses, volumes
        and what still runs, of every lab kept under that name (`clab inspect`)."""
        from stackdrill.backends.netns import cleanup, kept, names

        texts = []
        for rec in names.kept_slots():
            if rec.lab_name != lab_name:
                continue
            found = kept.KeptLab.read(cleanup.state_dir(names.LabNames(rec.lab_id)))
            texts.append(found.render() if found is not None else
                         f"kept netns lab {lab_name!r} (slot {rec.lab_id}): its description "
                         f"is missing; namespaces sd-{rec.lab_id}-* (`ip netns list`)")
        return "\n".join(texts) or None

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        from stackdrill.backends.netns.lab import NetnsLab
        from stackdrill.errors import BackendUnavailableError

        reason = self.available()
        if reason is not None:
            raise BackendUnavailableError(reason)
        return NetnsLab(topology, lab_name, seed=seed, options=options)
