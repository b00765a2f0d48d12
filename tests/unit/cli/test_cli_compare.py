"""`stackdrill compare`: exit 0 when backends agree, 1 naming the row that differs, 2 on
bad input, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
SPLIT_BRAIN = ROOT / "lab" / "drills" / "split-brain.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "sim.json"
    code, out, _err = invoke("run", str(SPLIT_BRAIN), "--report", str(path), "-q")
    assert code == 0, out
    return path


def tampered(report: Path, tmp_path: Path) -> Path:
    data = json.loads(report.read_text())
    data["state_after"]["drbd"]["r0"]["alice"]["role"] = "Secondary"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(data))
    return path


def test_a_differing_check_is_printed_with_each_sides_detail(saved_report: Path,
                                                              tmp_path: Path) -> None:
    data = json.loads(saved_report.read_text())
    check = data["checks"][0]
    check.update(ok=False, detail="the other side's reason")
    data["verdict"] = "fail"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    code, out, err = invoke("compare", str(saved_report), str(other))
    assert code == 1, out + err
    assert "  sim: the other side's reason" in out


def test_same_drill_on_sim_twice_agrees_and_prints_the_table() -> None:
    code, out, err = invoke("compare", str(SPLIT_BRAIN), "--backend", "sim,sim")
    assert code == 0, out + err
    assert "drbd r0 alice connection" in out and "StandAlone" in out
    assert "AGREE split-brain sim (seed 1) vs sim (seed 1)" in out


def test_seed_is_used_for_both_runs() -> None:
    code, out, _err = invoke("compare", str(SPLIT_BRAIN), "--backend", "sim",
                             "--backend", "sim", "--seed", "4")
    assert code == 0, out
    assert "sim (seed 4) vs sim (seed 4)" in out


def test_a_shipped_drill_is_compared_by_name() -> None:
    code, out, err = invoke("compare", "split-brain", "--backend", "sim,sim")
    assert code == 0, out + err
    assert "AGREE split-brain sim (seed 1) vs sim (seed 1)" in out


def test_saved_reports_that_differ_exit_one_and_name_the_row(saved_report: Path,
                                                             tmp_path: Path) -> None:
    code, out, err = invoke("compare", str(saved_report),
                            str(tampered(saved_report, tmp_path)))
    assert code == 1, out + err
    assert "differs state after: drbd r0 alice role: Primary vs Secondary" in out
    assert "DISAGREE split-brain" in out and "1 of" in out


def test_saved_reports_that_agree_exit_zero_and_quiet_prints_nothing(
        saved_report: Path, tmp_path: Path) -> None:
    code, out, err = invoke("compare", str(saved_report), str(saved_report), "-q")
    assert (code, out, err) == (0, "", "")
    code, out, err = invoke("compare", str(saved_report), str(tampered(saved_report, tmp_path)),
                            "-q")
    assert (code, out, err) == (1, "", "")  # the exit code says they differ


def test_the_old_spellings_still_work_and_say_which_to_use(saved_report: Path) -> None:
    code, out, err = invoke("compare", "--reports", str(saved_report), str(saved_report))
    assert code == 0 and "AGREE split-brain" in out
    assert err == ("stackdrill: warning: --reports is deprecated; use the two reports as "
                   "arguments (compare A.json B.json)\n")
    code, out, err = invoke("compare", str(SPLIT_BRAIN), "--backends", "sim,sim", "-q")
    assert code == 0
    assert err == "stackdrill: warning: --backends is deprecated; use --backend\n"


def test_report_is_repeated_to_write_both_formats(saved_report: Path, tmp_path: Path) -> None:
    pages = [tmp_path / "diff.json", tmp_path / "diff.html"]
    code, _out, _err = invoke("compare", str(saved_report), str(saved_report),
                              "--report", str(pages[0]), "--report", str(pages[1]))
    assert code == 0
    assert json.loads(pages[0].read_text())["rows"]
    assert pages[1].read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("suffix", [".json", ".html"])
def test_writes_the_comparison(saved_report: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out/diff{suffix}"
    code, _out, _err = invoke("compare", str(saved_report),
                              str(tampered(saved_report, tmp_path)), "--report", str(target),
                              "-q")
    assert code == 1
    text = target.read_text()
    if suffix == ".json":
        bad = [r for r in json.loads(text)["rows"] if not r["agree"]]
        assert [(r["what"], r["left"], r["right"]) for r in bad] == [
            ("drbd r0 alice role", "Primary", "Secondary")]
    else:
        assert text.startswith("<!DOCTYPE html>") and '<tr class="bad">' in text


def test_bad_drill_path_exits_two_without_traceback(tmp_path: Path) -> None:
    code, _out, err = invoke("compare", str(tmp_path / "missing.yaml"), "--backend",
                             "sim,sim")
    assert code == 2
    assert "missing.yaml" in err and "Traceback" not in err


def test_unknown_backend_is_refused_before_anything_runs() -> None:
    code, out, err = invoke("compare", str(SPLIT_BRAIN), "--backend", "sim,nope")
    assert code == 2
    assert "unknown backend 'nope'" in err
    assert "bringing up lab" not in out


@pytest.mark.parametrize("args", [
    (),                                           # neither DRILL nor two reports
    (str(SPLIT_BRAIN), "--backend", "sim"),       # one backend
    (str(SPLIT_BRAIN), "--backend", "sim", "--backend", "sim", "--backend", "sim"),
    ("a.json", "b.json", "--backend", "sim,sim"),  # saved reports are not run
    (str(SPLIT_BRAIN), "--reports", "a.json", "b.json"),
])
def test_usage_errors_exit_two(args: tuple[str, ...]) -> None:
    code, _out, err = invoke("compare", *args)
    assert code == 2
    assert "Traceback" not in err and err.strip()


def test_a_file_that_is_not_a_report_exits_two_naming_it(saved_report: Path,
                                                         tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"drill": 3}')
    code, _out, err = invoke("compare", str(saved_report), str(junk))
    assert code == 2
    assert err.startswith(f"stackdrill: error: {junk}:") and "Traceback" not in err


def test_reports_of_different_drills_exit_two(saved_report: Path, tmp_path: Path) -> None:
    data = json.loads(saved_report.read_text())
    data["drill"] = "other"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    code, _out, err = invoke("compare", str(saved_report), str(other))
    assert code == 2
    assert "different drills" in err


@pytest.mark.parametrize("make", ["huge", "fifo", "zero"])
def test_a_report_that_is_huge_or_not_a_file_is_refused_unread(
        saved_report: Path, tmp_path: Path, make: str) -> None:
    """A report path given to compare is read bounded: a 65 MiB file, a FIFO nobody writes
    to and /dev/zero are each refused with exit 2 and one line, without being read to
    their end (before, compare read the whole file, or waited on the FIFO for ever)."""
    import os

    if make == "huge":
        path = tmp_path / "huge.json"
        with path.open("wb") as fh:
            fh.truncate((64 << 20) + 1024)
    elif make == "fifo":
        path = tmp_path / "pipe.json"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    code, _out, err = invoke("compare", str(saved_report), str(path))
    assert code == 2, err
    assert err.startswith(f"stackdrill: error: {path}:") and "Traceback" not in err
    assert ("larger than 65536 KiB" if make == "huge" else "not a regular file") in err
