"""The wheel as a `pip install stackdrill` user gets it: no checkout, shipped drills by
name. Built from this tree, installed into a fresh venv; only its dependencies come from
the test's own environment (through a .pth file), so stackdrill itself is the wheel's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STACKDRILL_HOME")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_built_wheel_runs_a_shipped_drill_by_name_with_no_checkout(tmp_path: Path) -> None:
    tree = tmp_path / "tree"  # what the build reads, copied: it writes build/ beside it
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                 tmp_path / "dist", tree)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("stackdrill-*.whl")
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                     "--no-index", "-q", wheel)
    assert installed.returncode == 0, installed.stderr
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run(python, "-c", "import stackdrill; print(stackdrill.__file__)", cwd=empty)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr

    result = _run(venv / "bin" / "stackdrill", "run", "nova-host-failure", "--backend", "sim",
                  cwd=empty)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS nova-host-failure backend=sim" in result.stdout
    assert list(empty.iterdir()) == []  # nothing written where the user stood
