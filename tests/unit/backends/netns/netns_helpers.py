"""Shared pieces of the netns tests: the root check and a small lab topology."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from stackdrill.topology import Topology, parse_topology

NEEDS = ("ip", "nft", "tc", "ethtool", "nbdkit", "ping")


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the netns backend creates network namespaces, veths and nftables"
    missing = [c for c in NEEDS if shutil.which(c) is None]
    if missing:
        return f"needs {', '.join(missing)} (scripts/system-packages-netns.txt)"
    return None


needs_root = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# Tests that leave a dead lab on purpose and tests that sweep dead labs (`down --all`)
# run on one xdist worker (`--dist loadgroup`, pyproject): a sweep in a parallel worker
# removed the lab the other test was still looking at.
dead_labs = pytest.mark.xdist_group("dead-labs")


def small_topology(name: str = "small", with_volume: bool = True) -> Topology:
    """ctl (controller + storage), cmp1 and cmp2 (compute); one network; one overlay.
    Hosts boot in 0.3 s (the backend waits each host's boot_s on power-on)."""
    return parse_topology(small_topology_data(name, with_volume), name)


def small_topology_data(name: str = "small", with_volume: bool = True) -> dict[str, Any]:
    """small_topology as the mapping a topology file holds."""
    data: dict[str, Any] = {
        "name": name,
        "hosts": [
            {"name": "ctl", "roles": ["controller", "storage"], "boot_s": 0.3,
             "disks": [{"name": "sdb", "size_gb": 10}]},
            {"name": "cmp1", "roles": ["compute"], "boot_s": 0.3},
            {"name": "cmp2", "roles": ["compute"], "boot_s": 0.3},
        ],
        "networks": [{"name": "mgmt", "purposes": ["management", "storage", "tunnel"],
                      "cidr": "10.0.0.0/24",
                      "addresses": {"ctl": "10.0.0.1", "cmp1": "10.0.0.11",
                                    "cmp2": "10.0.0.12"}}],
        "overlays": [{"name": "ov", "vni": 100, "network": "mgmt", "cidr": "10.100.0.0/24"}],
        "flavors": {"small": {"vcpus": 1, "ram_mb": 512}},
        "instances": [{"name": "web1", "flavor": "small", "host": "cmp1", "overlay": "ov",
                       "mac": "fa:16:3e:00:00:01", "ip": "10.100.0.10",
                       "volumes": ["vol1"] if with_volume else []}],
    }
    if with_volume:
        data["volume_groups"] = [{"name": "vg1", "pv": {"host": "ctl", "disk": "sdb"}}]
        data["volumes"] = [{"name": "vol1", "vg": "vg1", "size_gb": 1}]
    return data


def ping(ns: str, address: str, *extra: str, count: int = 1, wait: float = 0.5) -> bool:
    """One bounded ping from namespace `ns` (only ever to lab addresses)."""
    cmd = ["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", str(count), "-i", "0.05",
           "-W", str(wait), *extra, address]
    return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0


def in_ns(ns: str, *argv: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                         timeout=30, check=False)
    return out.stdout
