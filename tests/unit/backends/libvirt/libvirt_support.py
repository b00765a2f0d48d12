"""Shared helpers for the libvirt unit tests (a module, not a conftest: the repo has none)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from stackdrill.topology import Topology
from stackdrill.topology.load import parse_topology

TEST_URI = "test:///default"
ROOT = Path(__file__).resolve().parents[4]


def require_vm(minutes: int) -> None:
    """Skip unless real guests are wanted and possible; build the guest image if missing."""
    if os.environ.get("STACKDRILL_VM_TESTS") != "1":
        pytest.skip(f"boots real guests (~{minutes} min): set STACKDRILL_VM_TESTS=1 to run")
    import subprocess
    import sys

    from stackdrill.backends.libvirt import LibvirtBackend
    from stackdrill.backends.libvirt.image import build_image
    from stackdrill.errors import BackendUnavailableError

    script = ROOT / "lab" / "images" / "build.py"
    current = subprocess.run([sys.executable, str(script), "--print-dir"], capture_output=True,
                             text=True, timeout=120, check=False)
    if current.returncode == 0:
        os.environ["STACKDRILL_IMAGE_DIR"] = current.stdout.strip()
    elif os.geteuid() == 0:  # the image for the current inputs is missing: build it (~1 min)
        try:
            image = build_image(script)
        except BackendUnavailableError as exc:
            pytest.skip(str(exc))
        os.environ["STACKDRILL_IMAGE_DIR"] = str(Path(image.root).parent)
    reason = LibvirtBackend.available()
    if reason:
        pytest.skip(f"libvirt backend unavailable: {reason}")


_counter = itertools.count()


def unique_lab(stem: str) -> str:
    """test:///default is shared by every connection in the process: keep labs apart."""
    return f"{stem}{next(_counter)}"


def two_node(uri_b: str | None = None) -> Topology:
    data: dict[str, Any] = {
        "name": "pair",
        "hosts": [
            {"name": "alice", "roles": ["storage"], "vcpus": 8, "ram_mb": 16384,
             "disks": [{"name": "sdb", "size_gb": 100}, {"name": "sdc", "size_gb": 1}]},
            {"name": "bob", "roles": ["storage"], "vcpus": 8, "ram_mb": 16384,
             "disks": [{"name": "sdb", "size_gb": 100}, {"name": "sdc", "size_gb": 1}],
             **({"libvirt_uri": uri_b} if uri_b else {})},
        ],
        "networks": [
            {"name": "mgmt", "purposes": ["management"], "cidr": "10.50.0.0/24",
             "addresses": {"alice": "10.50.0.1", "bob": "10.50.0.2"}},
            {"name": "repl", "purposes": ["replication"], "cidr": "10.60.0.0/30", "mtu": 9000,
             "addresses": {"alice": "10.60.0.1", "bob": "10.60.0.2"}},
        ],
        "drbd": [{"name": "r0", "nodes": ["alice", "bob"], "disk": "sdb", "size_gb": 90,
                  "network": "repl", "primary": ["alice"]}],
        "volume_groups": [{"name": "vg0", "pv": {"drbd": "r0"}}],
        "volumes": [{"name": "vol1", "vg": "vg0", "size_gb": 10}],
    }
    return parse_topology(data, "<test>")


def clvm_pair() -> Topology:
    """The seed's second story at lab scale: dual-primary DRBD, a shared VG, a 2-node cluster."""
    data = two_node().model_dump(mode="json")
    data["name"] = "clvm"
    data["drbd"][0].update(allow_two_primaries=True, primary=["alice", "bob"],
                           after_sb_0pri="discard-zero-changes",
                           after_sb_1pri="discard-secondary")
    data["volume_groups"] = [{"name": "vg-shared", "pv": {"drbd": "r0"}, "locking": "lvmlockd"}]
    data["volumes"] = []
    data["clusters"] = [{"name": "pair", "nodes": ["alice", "bob"], "network": "repl",
                         "two_node": True, "expected_votes": 1, "fencing": "manual"}]
    return parse_topology(data, "<test>")


def failover_pair() -> Topology:
    """Two compute+storage hosts mirroring vol1 with DRBD; vm1 writes to it on alice."""
    data = two_node().model_dump(mode="json")
    data["name"] = "failover"
    for host in data["hosts"]:
        host["roles"] = ["compute", "storage"]
    data["flavors"] = {"m1.small": {"vcpus": 1, "ram_mb": 512}}
    data["instances"] = [{"name": "vm1", "flavor": "m1.small", "host": "alice",
                          "volumes": ["vol1"]}]
    return parse_topology(data, "<test>")


if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

L = TypeVar("L", bound="LibvirtLab")


@contextmanager
def failover_lab(cls: type[L], stem: str) -> Iterator[L]:
    """A `failover_pair` lab of `cls` (a LibvirtLab whose guest agent is a stand-in: the
    test driver has none) up on test:///default; destroyed afterwards."""
    import libvirt

    from stackdrill.backends.libvirt import LibvirtBackend
    from stackdrill.backends.libvirt.image import GuestImage
    from stackdrill.backends.libvirt.lab import LabSettings

    LibvirtBackend(TEST_URI)  # the backend's error handler: libvirt errors are exceptions
    conn = libvirt.open(TEST_URI)
    created = cls(failover_pair(), name=unique_lab(stem), conns={TEST_URI: conn},
                  default_uri=TEST_URI, image=GuestImage.placeholder(),
                  workdir=Path("/stackdrill-test"), settings=LabSettings())
    created.up()
    try:
        yield created
    finally:
        created.destroy()
        conn.close()
