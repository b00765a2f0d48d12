"""`run --report PATH` as root: the verdict comes first; the file is written whole or not
at all (a full disk leaves the old file and no partial one); a symlink at PATH is never
followed; only the report's own directory is created; an unknown extension is refused
before the drill runs; an OS error is one line and exit 4."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli
from stackdrill.cli.output import write_report
from stackdrill.errors import OutputError

ROOT = Path(__file__).resolve().parents[3]
DRILL = str(ROOT / "lab" / "drills" / "quorum-two-node.yaml")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, nearly full: a real ENOSPC for the report (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_prints_the_verdict_exits_4_and_keeps_the_old_report(
        tiny_disk: Path) -> None:
    old = tiny_disk / "report.html"
    old.write_text("the previous report\n")
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block (bounded: 64 KiB)
        for _ in range(64):
            os.write(fd, b"x" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    code, out, err = invoke("run", DRILL, "--report", str(old))
    assert code == 4, (out, err)
    assert "PASS quorum-two-node" in out  # the verdict was printed before the write
    assert "No space left on device" in err and "Traceback" not in err
    assert err.startswith(f"stackdrill: error: cannot write report {old}"), err
    assert old.read_text() == "the previous report\n"  # whole, not truncated
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "report.html"]


def test_a_symlink_at_the_report_path_is_refused_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    link = tmp_path / "report.json"
    link.symlink_to(victim)
    code, out, err = invoke("run", DRILL, "--report", str(link), "-q")
    assert code == 2 and "symbolic link" in err and "Traceback" not in err
    assert "PASS" not in out  # refused before the drill ran
    assert victim.read_text() == "root:secret\n" and link.is_symlink()


def test_a_symlink_that_appears_after_the_check_is_replaced_not_followed(
        tmp_path: Path) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    link = tmp_path / "report.json"
    link.symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        write_report(link, "{}")
    assert victim.read_text() == "root:secret\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "shadow"]


@pytest.mark.parametrize("name", ["report.txt", "report", "report.JSON", "report.htm"])
def test_an_unknown_extension_is_refused_before_the_drill_runs(tmp_path: Path,
                                                               name: str) -> None:
    code, out, err = invoke("run", DRILL, "--report", str(tmp_path / name), "-q")
    assert code == 2 and ".json or .html" in err and "Traceback" not in err
    assert "PASS" not in out and not (tmp_path / name).exists()


def test_only_the_reports_own_directory_is_created(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "report.json"
    code, out, err = invoke("run", DRILL, "--report", str(deep), "-q")
    assert code == 2 and "does not exist" in err and "PASS" not in out
    assert not (tmp_path / "a").exists()
    one = tmp_path / "reports" / "report.json"
    code, out, err = invoke("run", DRILL, "--report", str(one), "-q")
    assert code == 0, err
    assert one.read_text().startswith("{") and "report written" not in out  # -q
    assert [p.name for p in one.parent.iterdir()] == ["report.json"]  # no temporary left


def test_a_written_report_is_readable_like_any_file(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    code, out, _err = invoke("run", DRILL, "--report", str(report))
    assert code == 0
    assert out.index("PASS quorum-two-node") < out.index("report written to")
    assert report.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
