"""`disk save` / `disk restore` in a guest: the shell line refuses, with the simulator's
words, while DRBD has the disk attached, and a restore without a saved copy (run here in
sh with a stand-in drbdadm, as the guest would run it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from stackdrill.backends.libvirt.commands import disk_copy_line
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[4] / "lab" / "topologies" / "drbd-pair.yaml"


def _lab() -> Any:
    disks = {"sdb": SimpleNamespace(target="vdb")}
    return SimpleNamespace(topology=load_topology(TOPOLOGY),
                           nodes={"cmp2": SimpleNamespace(disks=disks)})


def _run(line: str, dstate: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    drbdadm = fake / "drbdadm"
    drbdadm.write_text(f"#!/bin/sh\necho '{dstate}'\n")
    drbdadm.chmod(0o755)
    line = line.replace("/var/lib/stackdrill/copies", str(tmp_path / "copies"))
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=30,
                          check=False,
                          env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"})


def test_a_disk_drbd_has_attached_is_neither_copied_nor_overwritten(tmp_path: Path) -> None:
    for op in ("save", "restore"):
        done = _run(disk_copy_line(_lab(), "cmp2", "sdb", op), "UpToDate/UpToDate", tmp_path)
        assert done.returncode == 1
        assert done.stderr.strip() == "r0: cmp2's backing disk is attached: detach it first"
    assert not (tmp_path / "copies").exists()


def test_a_restore_without_a_saved_copy_says_so(tmp_path: Path) -> None:
    done = _run(disk_copy_line(_lab(), "cmp2", "sdb", "restore"), "Diskless/UpToDate",
                tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "cmp2/sdb: no copy of this disk was saved"
