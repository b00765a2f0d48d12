"""The guest workload's protocol: console lines become the Jepsen-style history, volume blocks
become stored records, with the simulator's checksums so both backends compare."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stackdrill.backends.libvirt.workload import (
    IDLE,
    WRITER,
    checksum,
    list_command,
    parse_history,
    parse_records,
    start_command,
)

BOOT_A = "0b1e0c2c-5a55-4b69-9a3e-2f1c1a1d0a01"
BOOT_B = "7c0ffee0-1234-4abc-8def-000000000002"
CONSOLE = [
    "[    0.000000] Linux version 6.1.0-56-amd64",
    f"SDW|vm1|vol1|1|1|aaaaaaaaaaaaaaaa|invoke|10.50|alice|{BOOT_A}",
    f"SDW|vm1|vol1|1|1|aaaaaaaaaaaaaaaa|ok|10.75|alice|{BOOT_A}",
    "stackdrill-init: ready alice 6.03s",
    f"SDW|vm1|vol1|1|2|bbbbbbbbbbbbbbbb|invoke|11.00|alice|{BOOT_A}",  # power cut: no outcome
    f"SDW|vm1|vol1|2|2|cccccccccccccccc|invoke|5.00|bob|{BOOT_B}",
    f"SDW|vm1|vol1|2|2|cccccccccccccccc|fail|5.10|bob|{BOOT_B}",
    f"SDW|vm1|vol1|2|3|dddddddddddddddd|ok|6.00|bob|{BOOT_B}",  # outcome without invoke: torn log
]
# lab time of uptime 0 of each boot (as the lab's clock samples map it)
BOOTED_AT = {("alice", BOOT_A): -10.0, ("bob", BOOT_B): 5.0}


def _lab_time(host: str, boot: str, uptime: float) -> float:
    return BOOTED_AT[(host, boot)] + uptime


def test_history_pairs_invokes_with_outcomes_and_unknowns_are_info() -> None:
    """A write whose acknowledgement never reached the host's console log is `info`: the
    client cannot know whether it happened (Jepsen's indeterminate outcome). Each guest's
    uptime stamps are placed on the lab's clock by its own boot's mapping."""
    ops = {(op.incarnation, op.seq): op for op in parse_history(CONSOLE, _lab_time)}
    assert set(ops) == {(1, 1), (1, 2), (2, 2)}
    assert (ops[1, 1].outcome, ops[1, 1].invoked, ops[1, 1].completed) == ("ok", 0.5, 0.75)
    assert (ops[1, 2].outcome, ops[1, 2].completed) == ("info", None)
    assert (ops[2, 2].outcome, ops[2, 2].host, ops[2, 2].invoked) == ("fail", "bob", 10.0)


def test_records_read_back_from_the_volume() -> None:
    text = "SDREC 1 1 aaaaaaaaaaaaaaaa vm1\nSDREC 2 2 cccccccccccccccc vm1\nSDRECgarbage\n"
    records = parse_records(text)
    assert sorted(records) == [1, 2]
    assert records[2].incarnation == 2 and records[2].checksum == "cccccccccccccccc"


def test_guest_checksum_matches_the_simulators() -> None:
    """The writer computes its checksum with sha256sum in the guest; it must equal the
    simulator's formula so stored records compare across backends."""
    out = subprocess.run(["sh", "-c", "printf '%s' 'vol1:vm1:2:7' | sha256sum | cut -c1-16"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == checksum("vol1", "vm1", 2, 7)
    from stackdrill.backends.sim.instances import checksum as sim_checksum

    assert checksum("vol1", "vm1", 2, 7) == sim_checksum("vol1", "vm1", 2, 7)


def test_writer_runs_in_its_own_namespace_and_replays_before_writing() -> None:
    cmd = start_command("vm1", 3, "vol1", "/dev/vg0/vol1", 0.5)
    assert "ip netns add vm1" in cmd and "ip netns exec vm1" in cmd
    assert "python3 /run/stackdrill/writer.py vm1 3 vol1 /dev/vg0/vol1 0.5" in cmd
    assert WRITER.index('b"SDREC "') < WRITER.index("while True:\n    csum")
    assert "os.O_DIRECT | os.O_DSYNC" in WRITER
    assert "time.time" not in WRITER  # stamps are uptime and boot id: a stepped clock moves none


def run_writer(tmp_path: Path, volume: Path, incarnation: int, seconds: float,
               between: Callable[[], None] = lambda: None) -> None:
    """The real writer (python3, as in the guest) on `volume` for `seconds`; `between`
    runs halfway."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "SDW_CONSOLE": str(tmp_path / "console"),
           "SDW_STATE": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, str(script), "vm1", str(incarnation), "vol1",
                             str(volume), "0.05"], env=env, start_new_session=True)
    try:
        time.sleep(seconds / 2)
        between()
        time.sleep(seconds / 2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def test_the_writer_itself_on_a_file_backed_volume(tmp_path: Path) -> None:
    """Run the real writer against a file for a moment, twice as two incarnations: every
    acknowledged write is on the volume, and the second incarnation continues after the
    first one's last record instead of overwriting it."""
    volume = tmp_path / "vol"
    volume.write_bytes(b"\0" * 512 * 64)
    for incarnation in (1, 2):
        run_writer(tmp_path, volume, incarnation, 0.8)
    history = parse_history((tmp_path / "console").read_text().splitlines(),
                            lambda h, b, up: up)
    stored = parse_records(volume.read_bytes().replace(b"\0", b"\n").decode())
    acked = [op for op in history if op.outcome == "ok"]
    assert {op.incarnation for op in acked} == {1, 2}
    for op in acked:
        assert stored[op.seq].incarnation == op.incarnation
        assert stored[op.seq].checksum == op.checksum == checksum("vol1", "vm1",
                                                                   op.incarnation, op.seq)
    first = max(op.seq for op in acked if op.incarnation == 1)
    assert min(op.seq for op in history if op.incarnation == 2) > first


def test_a_writer_never_writes_to_whatever_later_takes_its_disks_name(tmp_path: Path) -> None:
    """After a failover the old session's sdX is removed and the next login's disk may get
    the same name. The writer holds the disk it opened (as qemu does): the new disk under
    the old name gets none of its records. The shell writer reopened by name with dd,
    wrote into whatever had the name, and created a regular file when it had none."""
    old, new = tmp_path / "sda", tmp_path / "other"
    old.write_bytes(b"\0" * 512 * 64)

    def reuse_the_name() -> None:
        old.rename(tmp_path / "removed")
        new.write_bytes(b"\0" * 512 * 64)
        new.rename(old)

    run_writer(tmp_path, old, 1, 1.0, between=reuse_the_name)
    assert b"SDREC" in (tmp_path / "removed").read_bytes()
    assert old.read_bytes() == b"\0" * 512 * 64, "the writer wrote to the reused name"


def test_a_writer_whose_disk_is_not_there_fails_every_write_and_creates_nothing(
        tmp_path: Path) -> None:
    gone = tmp_path / "sdb"
    run_writer(tmp_path, gone, 1, 0.4)
    history = parse_history((tmp_path / "console").read_text().splitlines(),
                            lambda h, b, up: up)
    assert history and {op.outcome for op in history} <= {"fail", "info"}
    assert not gone.exists()


def test_an_instance_without_a_writer_runs_idle_holding_its_volume(tmp_path: Path) -> None:
    """An instance the drill gives no writer still runs (the simulator starts it idle): the
    guest lists it alive, its volume is held open (as qemu holds its disk, so the LV is
    busy), and nothing is written to the volume or the console."""
    cmd = start_command("vm2", 1, "vol2", "/dev/vg0/vol2", 0.5, writes=False)
    assert "sh /run/stackdrill/idle.sh vm2 1 vol2 /dev/vg0/vol2" in cmd
    assert "writer.sh" not in cmd
    volume = tmp_path / "vol"
    volume.write_bytes(b"\0" * 512 * 8)
    script = tmp_path / "idle.sh"
    script.write_text(IDLE)
    state = tmp_path / "state"
    console = tmp_path / "console"
    env = {**os.environ, "SDW_CONSOLE": str(console), "SDW_STATE": str(state)}
    proc = subprocess.Popen(["sh", str(script), "vm2", "1", "vol2", str(volume), "0.05"],
                            env=env, start_new_session=True)
    try:
        pid_file = state / "vm2" / "vol2.pid"
        for _ in range(50):
            if pid_file.exists() and Path(f"/proc/{proc.pid}/fd/3").readlink() == volume:
                break
            time.sleep(0.05)
        assert int(pid_file.read_text()) == proc.pid
        assert Path(f"/proc/{proc.pid}/fd/3").readlink() == volume
        listed = subprocess.run(["sh", "-c", list_command().replace(
            "/run/stackdrill/instances", str(state))], capture_output=True, text=True,
            check=True)
        assert listed.stdout.split() == ["vm2", "yes"]
        time.sleep(0.3)
        assert volume.read_bytes() == b"\0" * 512 * 8 and not console.exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def test_an_idle_instance_whose_volume_is_not_there_runs_all_the_same(tmp_path: Path) -> None:
    """Resumed on a host that came back Secondary (split-brain-0pri's bob), its LV is not
    active: the idle holder runs anyway, as the writer does (every write failing) and as
    the simulator's guest does; it used to exit, and compare disagreed on `running vm2`."""
    script = tmp_path / "idle.sh"
    script.write_text(IDLE)
    state = tmp_path / "state"
    env = {**os.environ, "SDW_STATE": str(state)}
    proc = subprocess.Popen(["sh", str(script), "vm2", "1", "vol2", str(tmp_path / "gone"),
                             "0.05"], env=env, start_new_session=True)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, "the idle instance exited"
        listed = subprocess.run(["sh", "-c", list_command().replace(
            "/run/stackdrill/instances", str(state))], capture_output=True, text=True,
            check=True)
        assert listed.stdout.split() == ["vm2", "yes"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
