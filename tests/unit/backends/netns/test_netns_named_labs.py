"""A netns lab brought up by `stackdrill up` lives between commands: each later command,
a process of its own, drives and looks at the same lab (its keeper holds it), and `down`
leaves nothing of it; a keeper that died is said so, and `down` still removes the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import pytest
import yaml
from netns_helpers import dead_labs, needs_root, small_topology_data

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.names import _registry_lock as registry_lock
from stackdrill.backends.netns.names import read_slots

pytestmark = [needs_root, pytest.mark.netns, dead_labs]

SRC = str(Path(__file__).parents[4] / "src")
DRBD_PAIR = Path(__file__).parents[4] / "lab" / "topologies" / "drbd-pair.yaml"


def _stackdrill(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "STACKDRILL_HOME": str(cwd / "home"),
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "stackdrill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _up(tmp_path: Path, name: str) -> tuple[str, dict[str, object]]:
    """`stackdrill up` on netns; the lab's slot id and its keeper's state."""
    (tmp_path / "topo.yaml").write_text(yaml.safe_dump(small_topology_data(name)))
    done = _stackdrill(tmp_path, "up", "topo.yaml", "--backend", "netns", "--lab", name)
    assert done.returncode == 0, done.stderr
    assert f"lab {name} is up on netns" in done.stdout
    slots = [r for r in read_slots() if r.lab_name == name]
    assert len(slots) == 1
    state = json.loads((tmp_path / "home" / "labs" / f"{name}.keeper" / "state.json")
                       .read_text())
    return slots[0].lab_id, state


def _gone(tmp_path: Path, name: str, lab_id: str, pid: int) -> None:
    """Nothing of the lab is left: namespaces, keeper, its files, the record. A freed lab
    id is taken by the next lab at once: namespaces under it now must be another lab's
    (its slot, written before its namespaces, names another lab)."""
    left = [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]
    owners = {r.lab_name for r in read_slots() if r.lab_id == lab_id}
    assert not left or (owners and name not in owners), (left, owners)
    assert not Path(f"/proc/{pid}").exists() or "\nState:\tZ" in \
        Path(f"/proc/{pid}/status").read_text()
    labs = tmp_path / "home" / "labs"
    assert not (labs / f"{name}.json").exists() and not (labs / f"{name}.keeper").exists()


def test_each_command_drives_the_lab_up_left_and_down_leaves_nothing(tmp_path: Path) -> None:
    name = f"held-{os.getpid()}"  # slots are machine-wide: another run may hold "held"
    lab_id, state = _up(tmp_path, name)
    pid = int(str(state["owner"]).split()[0])
    try:
        shown = _stackdrill(tmp_path, "status", "--lab", name)
        assert shown.returncode == 0, shown.stderr
        assert f"held by its keeper (pid {pid}" in shown.stdout
        injected = _stackdrill(tmp_path, "inject", "host_crash", "host=cmp1", "--lab", name)
        assert injected.returncode == 0 and injected.stdout.startswith("f1: host_crash")
        elsewhere = tmp_path / "elsewhere"  # another checkout's lab store lists it too
        elsewhere.mkdir()
        listed = json.loads(_stackdrill(elsewhere, "list", "labs", "--json").stdout)
        assert {"lab": name, "backend": "netns", "held_by": f"keeper pid {pid}",
                "store": str(tmp_path / "home")}.items() <= \
            next(r for r in listed if r["lab"] == name).items()
        shown = _stackdrill(tmp_path, "status", "--lab", name)
        assert "cmp1 │ off" in shown.stdout and "f1: host_crash host=cmp1" in shown.stdout
        # the namespace of the crashed host is frozen in the kernel, not only in a record
        assert f"sd-{lab_id}-h-cmp1" in nsops.list_namespaces()
        healed = _stackdrill(tmp_path, "heal", "f1", "--lab", name)
        assert healed.returncode == 0, healed.stderr
        time.sleep(3)  # the workload writes between commands, in the keeper
        verified = _stackdrill(tmp_path, "verify", "--lab", name)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        writes = int(verified.stdout.split(" writes,")[0].split()[-1])
        assert writes > 0 and "0 acknowledged write(s) lost" in verified.stdout
        # a connection without the lab's key is refused before anything is read
        with pytest.raises(AuthenticationError):
            Client(str(state["address"]), family="AF_UNIX", authkey=b"not the key")
        assert _stackdrill(tmp_path, "status", "--lab", name).returncode == 0
    finally:
        down = _stackdrill(tmp_path, "down", "--lab", name)
    assert down.returncode == 0, down.stderr
    _gone(tmp_path, name, lab_id, pid)


def test_a_dead_keeper_is_an_infrastructure_error_and_down_removes_what_it_left(
        tmp_path: Path) -> None:
    name = f"orphan-{os.getpid()}"
    lab_id, state = _up(tmp_path, name)
    pid = int(str(state["owner"]).split()[0])
    try:
        # the registry lock keeps other runs' bring-ups from reclaiming the dead lab (as
        # they should) while this test looks at what status does with it
        with registry_lock():
            os.kill(pid, signal.SIGKILL)  # nobody tears the lab down
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            shown = _stackdrill(tmp_path, "status", "--lab", name)
            assert shown.returncode == 3 and "Traceback" not in shown.stderr
            assert "its keeper is not running" in shown.stderr
            assert f"stackdrill down --lab {name}" in shown.stderr
            assert [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]
    finally:
        down = _stackdrill(tmp_path, "down", "--lab", name)
    assert down.returncode == 0, down.stderr
    _gone(tmp_path, name, lab_id, pid)


def test_a_lab_that_cannot_come_up_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    done = _stackdrill(tmp_path, "up", str(DRBD_PAIR), "--backend", "netns", "--lab", "nodrbd")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    # refused before any keeper starts: the topology names what netns declared it lacks
    assert "topology drbd[0] (r0): backend 'netns' cannot realise drbd" in done.stderr
    assert not [r for r in read_slots() if r.lab_name == "nodrbd"]
    assert not (tmp_path / "home" / "labs" / "nodrbd.json").exists()
    assert not (tmp_path / "home" / "labs" / "nodrbd.keeper").exists()
