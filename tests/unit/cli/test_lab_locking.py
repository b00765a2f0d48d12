"""Commands on one named lab, run at the same time by separate processes, queue on the
lab's lock: none is lost, none sees half of another. A lab held too long is a clear
error naming the holder, within a bounded wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stackdrill.cli.lablock import hold

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = str(ROOT / "lab" / "topologies" / "nova-drbd.yaml")


def env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "STACKDRILL_HOME": str(home),
            "PYTHONPATH": str(ROOT / "src"), **extra}


def together(home: Path, *commands: list[str], **extra: str) -> list[tuple[int, str]]:
    """Start every command at once (each its own `python -m stackdrill`), wait for all."""
    procs = [subprocess.Popen([sys.executable, "-m", "stackdrill", *args], env=env(home, **extra),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for args in commands]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        results.append((proc.returncode, out))
    return results


def record(home: Path, name: str = "t1") -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "labs" / f"{name}.json").read_text())
    return data


def test_two_ups_of_one_lab_one_wins_the_other_is_told(tmp_path: Path) -> None:
    results = together(tmp_path, ["up", TOPOLOGY, "--lab", "t1", "--seed", "1"],
                       ["up", TOPOLOGY, "--lab", "t1", "--seed", "2"])
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(out for code, out in results if code == 2)
    assert "already exists" in loser
    assert record(tmp_path)["seed"] in (1, 2)


def test_concurrent_commands_on_one_lab_all_count(tmp_path: Path) -> None:
    assert together(tmp_path, ["up", TOPOLOGY, "--lab", "t1"])[0][0] == 0
    injects = together(tmp_path, ["inject", "host_hang", "host=cmp1", "--lab", "t1"],
                       ["inject", "host_hang", "host=cmp2", "--lab", "t1"],
                       ["inject", "link_down", "host=cmp3", "network=storage", "--lab", "t1"])
    assert all(code == 0 for code, _ in injects), injects
    steps = record(tmp_path)["steps"]
    assert isinstance(steps, list)
    assert sorted(step["id"] for step in steps) == ["f1", "f2", "f3"]
    waits = together(tmp_path, *(["wait", "5", "--lab", "t1"] for _ in range(6)))
    assert all(code == 0 for code, _ in waits), waits
    assert record(tmp_path)["now"] == 30.0


def test_a_lab_held_too_long_is_a_clear_error_naming_the_holder(tmp_path: Path) -> None:
    assert together(tmp_path, ["up", TOPOLOGY, "--lab", "t1"])[0][0] == 0
    with hold(tmp_path / "labs" / "t1.lock", "t1"):
        [(code, out)] = together(tmp_path, ["wait", "5", "--lab", "t1"],
                                 STACKDRILL_LOCK_WAIT_S="1")
    assert code == 2, out
    assert f"lab 't1' is busy: stackdrill process {os.getpid()} has held it" in out
    assert "Traceback" not in out and record(tmp_path)["now"] == 0.0


def test_a_name_with_a_newline_never_becomes_a_file(tmp_path: Path) -> None:
    [(code, out)] = together(tmp_path, ["up", TOPOLOGY, "--lab", "t1\n"])
    assert code == 2 and "invalid lab name" in out
    assert not (tmp_path / "labs").exists() or not any((tmp_path / "labs").iterdir())
