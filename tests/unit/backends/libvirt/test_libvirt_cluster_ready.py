"""A node's cluster stack counts as started when LVM can use it, not when dlm_controld
first answers: lvmlockd reads the cluster name dlm_controld writes to configfs a little
later (lvm2 lvmlockd-dlm.c read_cluster_name), and refuses the lock manager until then."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from stackdrill.backends.libvirt.cluster import stack_command
from stackdrill.topology import load_topology

ROOT = Path(__file__).resolve().parents[4]
CONFIGFS_NAME = "/sys/kernel/config/dlm/cluster/cluster_name"


def _stubs(bin_dir: Path) -> dict[str, str]:
    """The daemons and tools as this machine cannot run them: every daemon starts, none
    is running yet, and dlm_tool and lvmlockctl answer at once."""
    bin_dir.mkdir()
    for name, rc in (("pgrep", 1), ("corosync", 0), ("corosync-cfgtool", 0),
                     ("dlm_controld", 0), ("lvmlockd", 0), ("dlm_tool", 0),
                     ("lvmlockctl", 0)):
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\nexit {rc}\n")
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_start_waits_for_the_cluster_name_lvmlockd_reads(tmp_path: Path) -> None:
    spec = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml").clusters[0]
    name_file = tmp_path / "cluster_name"
    command = stack_command(spec, "start").replace(CONFIGFS_NAME, str(name_file))
    env = _stubs(tmp_path / "bin")
    writer = subprocess.Popen(["sh", "-c", f"sleep 1.5; echo drbd-pair > {name_file}"])
    began = time.monotonic()
    done = subprocess.run(["sh", "-c", command], check=False, env=env, capture_output=True,
                          text=True, timeout=60)
    waited = time.monotonic() - began
    writer.wait(timeout=5)
    assert done.returncode == 0, done.stderr
    assert waited >= 1.4  # not before dlm_controld wrote the name


def test_dlm_controld_starts_only_once_corosync_answers(tmp_path: Path) -> None:
    """`corosync` returns when it has forked; a dlm_controld started before corosync's IPC
    answers exits ("corosync cfg init error 2", seen on a guest booting under load)."""
    spec = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml").clusters[0]
    name_file = tmp_path / "cluster_name"
    name_file.write_text("drbd-pair\n")
    command = stack_command(spec, "start").replace(CONFIGFS_NAME, str(name_file))
    env = _stubs(tmp_path / "bin")
    ready, seen = tmp_path / "corosync-ready", tmp_path / "dlm-saw"
    (tmp_path / "bin/corosync-cfgtool").write_text(f"#!/bin/sh\ntest -e {ready}\n")
    (tmp_path / "bin/dlm_controld").write_text(
        f"#!/bin/sh\ntest -e {ready} && echo ready > {seen} || echo early > {seen}\n")
    marker = subprocess.Popen(["sh", "-c", f"sleep 1.2; touch {ready}"])
    done = subprocess.run(["sh", "-c", command], check=False, env=env, capture_output=True,
                          text=True, timeout=60)
    marker.wait(timeout=5)
    assert done.returncode == 0, done.stderr
    assert seen.read_text().strip() == "ready"


def test_start_gives_up_within_its_bound_when_the_name_never_comes(tmp_path: Path) -> None:
    spec = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml").clusters[0]
    command = stack_command(spec, "start").replace(CONFIGFS_NAME, str(tmp_path / "never"))
    command = command.replace("seq 120", "seq 3")  # the bound, shortened for the test
    done = subprocess.run(["sh", "-c", command], check=False, env=_stubs(tmp_path / "bin"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "did not become ready" in done.stderr


def test_a_returning_node_starts_its_enabled_cluster_stack_but_no_lockspace() -> None:
    """A guest that powers on again runs what its boot would (the simulator's
    ClusterStacks.booted): corosync with the lab's configuration, dlm_controld, lvmlockd,
    and waits until LVM can use them; no VG lockspace (its DRBD device is Secondary)."""
    from stackdrill.backends.libvirt.cluster import boot_command, corosync_conf

    topo = load_topology(ROOT / "lab/topologies/two-node-clvm.yaml")
    spec = topo.clusters[0]
    command = boot_command(topo, "bob")
    assert command is not None
    assert corosync_conf(topo, spec) in command
    assert stack_command(spec, "start") in command
    assert command.rstrip().endswith("&")  # detached: the compute service does not wait
    assert "use_lvmlockd = 1" in command
    assert "--lock-start" not in command
    local = load_topology(ROOT / "lab/topologies/drbd-pair.yaml")
    assert boot_command(local, local.hosts[0].name) is None
