"""A run stopped by a signal leaves nothing behind: SIGTERM and SIGHUP unwind like Ctrl-C
(the scratch directory with the engine's inventory is removed); what SIGKILL leaves,
`down --all` removes, and only that: never a directory stackdrill did not mark, never
one whose owner still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.backends import REGISTRY
from stackdrill.backends.lifetime import OWNER_MARKER
from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = ROOT / "lab" / "topologies" / "nova-drbd.yaml"  # six writers: ~12 s of sim work
LONG_DRILL = f"""name: long-run
topology: {TOPOLOGY}
duration_s: 86400
workload: {{write_interval_s: 1.0}}
schedule:
  - {{at: 30, id: cmp1-dies, inject: {{kind: host_crash, host: cmp1, power_back: false}}}}
expect:
  - {{check: exactly_once}}
"""


def scratch(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.glob("stackdrill-*"))


# Runs the rest of its arguments as a new python whose SIGINT, SIGTERM and SIGHUP have
# their default meaning even when this test run inherited them ignored (a CI started under
# nohup or as a background job ignores SIGINT and SIGHUP): the same pid, after exec.
DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def start_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """A long sim run with its own TMPDIR; returns once its scratch directory exists."""
    drill = tmp_path / "long.yaml"
    drill.write_text(LONG_DRILL)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT / "src"),
           "STACKDRILL_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-c", DEFAULT_SIGNALS, "-m", "stackdrill", "run",
                             str(drill), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 60
    while not any((d / OWNER_MARKER).exists() for d in scratch(tmpdir)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run made no scratch directory: {proc.communicate()[0]}")
        time.sleep(0.05)
    return proc, tmpdir, drill


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_remove_the_runs_scratch_directory(tmp_path: Path,
                                                              sig: signal.Signals) -> None:
    proc, tmpdir, _drill = start_run(tmp_path)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out
    assert "Traceback" not in out
    assert scratch(tmpdir) == []


@pytest.mark.xdist_group("dead-labs")  # netns_helpers.dead_labs: sweeps dead labs
def test_down_all_removes_what_sigkill_left_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, tmpdir, _drill = start_run(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    [left] = scratch(tmpdir)  # SIGKILL cannot clean up: the inventory is still there
    assert (left / "inventory.sqlite").exists() or (left / OWNER_MARKER).exists()
    unmarked = tmpdir / "stackdrill-not-ours"
    unmarked.mkdir()
    live = tmpdir / "stackdrill-live-owner"
    live.mkdir()
    (live / OWNER_MARKER).write_text(f"{os.getpid()} {_start(os.getpid())}\n")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path / "home"))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # let TMPDIR be read again
    for other in ("netns", "libvirt", "vagrant"):  # this machine's other labs are not ours
        monkeypatch.delitem(REGISTRY, other)
    result = CliRunner().invoke(cli, ["down", "--all"])
    assert result.exit_code == 0, result.output
    assert str(left) in result.output.replace("\n", "")
    assert scratch(tmpdir) == [live, unmarked]


def _start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
