"""instance_crash on the libvirt backend: the instance's workload loops are killed with
SIGKILL inside the guest it runs in (their whole process group), the guest still lists
the instance, not running, and its host stays on.

The kill and list commands run here, in a local shell, against a real writer process (as
test_libvirt_workload does); the lab is libvirt's `test:///default`, whose guests have no
agent, so its `run` is replaced by that local shell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import TEST_URI, two_node, unique_lab  # noqa: E402

from stackdrill.api import GuestStopped, PowerState  # noqa: E402
from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.agent import ShellResult  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.workload import (  # noqa: E402
    STATE,
    WRITER,
    kill_command,
    list_command,
)
from stackdrill.faults import InstanceCrash  # noqa: E402


def local(command: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command.replace(STATE, str(state))],
                          capture_output=True, text=True, timeout=30, check=False)


def live_in_group(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an orphaned child waits to be reaped)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real writer for vm1 on a file-backed volume, started as the guest starts it
    (setsid: its own process group)."""
    volume = tmp_path / "vol"
    volume.write_bytes(b"\0" * 512 * 64)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    state = tmp_path / "state"
    env = {**os.environ, "SDW_CONSOLE": str(tmp_path / "console"), "SDW_STATE": str(state)}
    proc = subprocess.Popen([sys.executable, str(script), "vm1", "1", "vol1", str(volume),
                             "0.05"], env=env, start_new_session=True)
    for _ in range(100):
        if (state / "vm1" / "vol1.ok").exists():
            break
        time.sleep(0.05)
    yield proc, state
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def test_kill_command_kills_the_writer_group_and_the_guest_lists_it_stopped(
        writer: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, state = writer
    assert local(list_command(), state).stdout.split() == ["vm1", "yes"]
    done = local(kill_command("vm1"), state)
    assert done.returncode == 0, done.stderr
    assert proc.wait(timeout=5) == -signal.SIGKILL
    for _ in range(100):  # SIGKILL reaches the group's dd and sleep a moment later
        if not live_in_group(proc.pid):
            break
        time.sleep(0.02)
    assert live_in_group(proc.pid) == []  # nothing of its group is left (dd, sleep)
    assert local(list_command(), state).stdout.split() == ["vm1", "no"]
    again = local(kill_command("vm1"), state)  # nothing alive: nothing was killed
    assert again.returncode == 1 and "no live process of vm1" in again.stderr


@pytest.fixture
def lab() -> Iterator[LibvirtLab]:
    backend = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test"))
    with backend.create(two_node(), lab_name=unique_lab("crash"), seed=1) as created:
        yield created


def test_the_compute_driver_kills_it_where_it_runs_and_reports_it_not_running(
        lab: LibvirtLab, writer: tuple[subprocess.Popen[bytes], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """vm1 runs in alice's guest (here: the local writer); the compute driver's crash
    kills it there, traces the stop, keeps its definition, and guests(alice) reads the
    real process: not running. bob is not asked; both hosts stay on."""
    proc, state = writer
    asked: list[str] = []

    def run(host: str, command: str, timeout: float = 60.0) -> ShellResult:
        asked.append(host)
        done = local(command, state)
        return ShellResult(command, done.returncode, done.stdout, done.stderr)

    monkeypatch.setattr(lab, "run", run)
    lab.compute.running["alice"]["vm1"] = 1
    lab.compute.defined["alice"]["vm1"] = {"vol1": "/dev/vg0/vol1"}
    assert lab.compute.crash("vm1") == ["alice"]
    assert proc.wait(timeout=5) == -signal.SIGKILL and asked == ["alice"]
    guests = lab.drivers.compute.guests("alice").result(timeout=10)
    assert [(g.name, g.running) for g in guests] == [("vm1", False)]
    assert "vm1" not in lab.compute.running["alice"] and "vm1" in lab.compute.defined["alice"]
    stops = [t.event for t in lab.events() if isinstance(t.event, GuestStopped)]
    assert [(s.host, s.instance, s.incarnation, s.why) for s in stops] == [
        ("alice", "vm1", 1, "killed")]
    assert lab.compute.crash("vm1") == []  # runs nowhere now
    assert lab.observe().power == {"alice": PowerState.ON, "bob": PowerState.ON}


def test_the_test_driver_takes_the_fault_without_a_workload_to_kill(lab: LibvirtLab) -> None:
    assert LibvirtBackend.capabilities.supports_fault("instance_crash")
    lab.inject(InstanceCrash(instance="vm1"))
    assert lab._faults.crashed == [InstanceCrash(instance="vm1")]
    assert lab.observe().power == {"alice": PowerState.ON, "bob": PowerState.ON}
