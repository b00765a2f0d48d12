"""Output piped into a file, grep or a CI log keeps its long lines whole: rich would cut
it at 80 columns when stdout is no terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[3] / "src")
TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "drbd-pair.yaml"


def _piped(*args: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(PYTHONPATH=SRC, STACKDRILL_HOME=str(home))
    done = subprocess.run([sys.executable, "-m", "stackdrill", *args], env=env, text=True,
                          capture_output=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_long_path_in_a_piped_line_and_a_table_is_not_cut(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "and-one-more-level-down"
    deep.mkdir(parents=True)
    topology = deep / "drbd-pair-with-a-long-file-name.yaml"
    shutil.copy(TOPOLOGY, topology)
    assert len(str(topology)) > 160

    validated = _piped("validate", str(topology), home=tmp_path / "h")
    assert f"{topology} (topology)" in validated.splitlines()[0]

    store = deep / "lab-store"
    _piped("up", str(topology), "--lab", "wide", home=store)
    listed = _piped("list", "labs", home=store)
    assert any(str(store) in line and "wide" in line for line in listed.splitlines())
