"""`stackdrill fuzz` as a user runs it: a sweep here and on Dask stores the same verdicts,
a stopped sweep resumes without redoing what it stored, a failure prints a command that
replays it, and a bad argument is one line and exit 2."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from distributed import LocalCluster

from stackdrill.cli import cli
from stackdrill.fuzz.results import ResultStore
from stackdrill.fuzz.sweep import SeedResult
from stackdrill.fuzz.version import code_version

FAILING = 1716  # fails on this code (KNOWN_BUGS in scenarios/test_random_drills.py)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def stored(url: str, start: int, stop: int) -> list[SeedResult]:
    return list(ResultStore(url, code_version().key).results(start, stop))


def assert_same(a: list[SeedResult], b: list[SeedResult]) -> None:
    assert [r.seed for r in a] == [r.seed for r in b]
    assert all(x.same_verdict(y) for x, y in zip(a, b, strict=True))


def test_a_sweep_here_and_on_a_local_cluster_of_processes_store_the_same_verdicts(
        tmp_path: Path) -> None:
    """`--sweep A:B` (this process) and `--sweep A:B -j 2` (a Dask LocalCluster of two
    worker processes) store one row per seed with identical verdicts, failed checks,
    details and traces, under this commit; both exit 1 because seed 1716 fails."""
    here, there = f"sqlite:///{tmp_path}/here.sqlite", f"sqlite:///{tmp_path}/there.sqlite"
    code, out, _ = invoke("fuzz", "--sweep", "1713:1719", "--results", here)
    assert code == 1 and "6 stored (6 run now), 1 failing" in out and "seed 1716:" in out
    code, out, _ = invoke("fuzz", "--sweep", "1713:1719", "-j", "2", "--results", there)
    assert code == 1 and "LocalCluster of 2 worker processes" in out
    a, b = stored(here, 1713, 1719), stored(there, 1713, 1719)
    assert len(a) == 6 and [r.seed for r in a if r.verdict == "fail"] == [FAILING]
    assert_same(a, b)
    assert len({r.worker for r in b}) == 2 and os.getpid() not in {
        int(r.worker.rsplit(":", 1)[1]) for r in b}  # ran in two other processes


def test_a_sweep_on_an_existing_scheduler_stores_the_same_verdicts(tmp_path: Path) -> None:
    """`--scheduler tcp://HOST:PORT` sends the seeds to a scheduler someone else started."""
    here, there = f"sqlite:///{tmp_path}/here.sqlite", f"sqlite:///{tmp_path}/there.sqlite"
    assert invoke("fuzz", "--sweep", "20:24", "--results", here)[0] == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        code, out, _ = invoke("fuzz", "--sweep", "20:24", "--scheduler", address,
                              "--results", there)
    assert code == 0 and f"connecting to the Dask scheduler {address}" in out
    assert_same(stored(here, 20, 24), stored(there, 20, 24))


SEEDS = 100_000  # the interrupted sweep's range: never finished before its Ctrl-C


@contextmanager
def _sigint_handled() -> Iterator[None]:
    """Ctrl-C reaches the sweep as at a terminal: a runner started as a background job
    (`cmd &`) passes SIGINT on ignored, and Python then installs no handler for it; a
    handled signal is reset to its default in a child, an ignored one stays ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _rows(db: Path) -> list[tuple[int, int, str]]:
    """The stored rows, read as another process would (read-only, the sweep's WAL seen);
    nothing while the sweep has not made its file or table yet. Other errors are raised:
    a CI run once saw no row during a whole sweep, and swallowing them hid why."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT id, seed, created FROM fuzz_results ORDER BY id")]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def _interrupted(args: list[str], db: Path, rows: int) -> tuple[str, str]:
    """Run `stackdrill ARGS`, Ctrl-C it once `db` holds at least `rows` rows; its output.
    The sweep's range is far more than it can finish meanwhile, so however slowly this
    poller is scheduled, the signal finds it running."""
    with _sigint_handled():
        proc = subprocess.Popen([sys.executable, "-m", "stackdrill", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(_rows(db)) < rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    return out, err


def test_an_interrupted_sweep_keeps_what_it_stored_and_resumes_the_rest(tmp_path: Path) -> None:
    """Ctrl-C after a few seeds: exit 130, the stored rows stay, and the printed command
    runs only the seeds that are missing — the stored ones are not run again. The range
    (SEEDS) cannot be finished before the signal (a short one once was, on a busy runner,
    and the sweep exited 0); the resumed sweep is interrupted too, once it stored more."""
    db = tmp_path / "fuzz.sqlite"
    url = f"sqlite:///{db}"
    out, _err = _interrupted(["fuzz", "--sweep", f"0:{SEEDS}", "--results", url], db, 3)
    before = _rows(db)
    assert len(before) >= 3
    resume = f"stackdrill fuzz --sweep 0:{SEEDS} --results {url}"
    assert f"left; resume with: {resume}" in out
    out, _err = _interrupted(resume.split()[1:], db, len(before) + 2)
    assert f"{len(before)} stored, {SEEDS - len(before)} to run" in out
    after = _rows(db)
    assert after[:len(before)] == before  # the stored ones untouched, not run again
    seeds = [r[1] for r in after]
    assert len(seeds) == len(set(seeds)) > len(before)  # only missing seeds were run


def test_the_printed_command_replays_the_failing_seed_with_the_same_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reproduce line of a failing seed pastes into a shell and gives the verdict the
    sweep stored (pinned to the commit: `git archive` of it when the tree is clean)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the commit is exported
    url = f"sqlite:///{tmp_path}/fuzz.sqlite"
    code, out, _ = invoke("fuzz", "--sweep", f"{FAILING}:{FAILING + 1}", "-q", "--results", url)
    assert code == 1
    line = next(x for x in out.splitlines() if x.strip().startswith("reproduce: "))
    command = line.split("reproduce: ", 1)[1]
    version = code_version()
    if version.commit is not None and not version.dirty:
        assert f"archive {version.commit} src" in command
    [result] = stored(url, FAILING, FAILING + 1)
    replay = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                            timeout=600, check=False)
    assert replay.returncode == 1, replay.stderr
    assert replay.stdout.startswith(f"seed {FAILING}: FAIL")
    failed = [x.split()[1].rstrip(":") for x in replay.stdout.splitlines()
              if x.startswith("  FAIL ")]
    assert tuple(failed) == result.failed
    assert "shrunk schedule (still fails exactly_once_or_declared)" in replay.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--sweep", "0:3", "--scheduler", "http://h:8786"],
     "command line: --scheduler: 'http://h:8786': expected tcp://HOST:PORT or tls://HOST:PORT"),
    (["--sweep", "0:3", "--scheduler", "tcp://h:8786", "-j", "2"], "command line: -j: "),
    (["--sweep", "5:5"], "command line: --sweep: '5:5': expected START:STOP"),
    (["--sweep", "x"], "command line: --sweep: 'x': expected START:STOP"),
    ([], "command line: fuzz: give exactly one of --seed, --sweep"),
    (["--sweep", "0:1", "--seed", "1"], "command line: fuzz: give exactly one of"),
    (["--sweep", "0:1", "--results", "nosuchdb://x"], "command line: --results: 'nosuchdb://x'"),
    (["--sweep", "0:1", "--shrink"], "command line: --shrink: only with --seed"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str,
                                              tmp_path: Path) -> None:
    code, out, err = invoke("fuzz", *args, "--results", f"sqlite:///{tmp_path}/x.sqlite") \
        if "--results" not in args else invoke("fuzz", *args)
    assert code == 2 and err.startswith(f"stackdrill: error: {message}"), (out, err)
    assert len(err.splitlines()) == 1 and not out
    assert not (tmp_path / "x.sqlite").exists()  # refused before anything was stored


def test_json_lists_the_failing_seeds_with_their_checks(tmp_path: Path) -> None:
    """`--json`: the failing seeds of the range (stored earlier or now) as one JSON object."""
    import json

    url = f"sqlite:///{tmp_path}/fuzz.sqlite"
    code, out, _ = invoke("fuzz", "--sweep", f"{FAILING - 1}:{FAILING + 1}", "--json",
                          "--results", url)
    assert code == 1
    failing = json.loads(out)
    assert list(failing) == [str(FAILING)]
    assert failing[str(FAILING)]["failed"] == ["exactly_once_or_declared"]


def test_a_database_password_is_never_printed(tmp_path: Path) -> None:
    """A results URL with a password (PostgreSQL): refused or unreachable, the error line
    shows *** in its place."""
    code, out, err = invoke("fuzz", "--sweep", "0:1", "--results",
                            "postgresql://fuzz:s3cret@127.0.0.1:1/fuzz")
    assert code in (2, 3) and err.startswith("stackdrill: error: "), (out, err)
    assert len(err.splitlines()) == 1
    assert "s3cret" not in out + err and "fuzz:***@127.0.0.1:1" in err


def test_a_results_database_that_refuses_is_exit_3_not_a_failing_seed(
        limited_user: str) -> None:
    """A user who may not create the results table: no seed ran, so exit 3 (an
    environment problem), one line with the server's reason; it was exit 1, the code of
    a failing seed, with a database traceback."""
    code, out, err = invoke("fuzz", "--sweep", "0:1", "--results", limited_user)
    assert code == 3, (out, err)
    assert err.startswith("stackdrill: error: results database ") and "Traceback" not in err
    assert "permission denied for schema public" in err and "CREATE TABLE" not in err
    assert "FAIL" not in out
