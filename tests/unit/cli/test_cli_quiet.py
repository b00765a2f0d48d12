"""-q is really quiet: nothing on a pass (not even the engine's warnings), only the
failed verdict on stderr on a failure; the exit code carries the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill import shipped
from stackdrill.cli import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_passing_run_prints_nothing(caplog: pytest.LogCaptureFixture,
                                      tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, out, err = invoke("run", "nova-host-failure", "-q", "--report", str(report))
    assert (code, out, err) == (0, "", "")
    assert report.is_file()
    # the fencing warning a run logs without -q is not printed with it
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_failing_run_says_only_its_verdict_on_stderr(tmp_path: Path) -> None:
    """nova-host-failure without its recovery step: nothing brings the instances back."""
    text = (shipped.DRILLS / "nova-host-failure.yaml").read_text()
    text = text.replace("  - {at: 0, recover: {parallel: 4}}\n", "").replace(
        "../topologies/nova-drbd.yaml", str(shipped.TOPOLOGIES / "nova-drbd.yaml"))
    drill = tmp_path / "unrecovered.yaml"
    drill.write_text(text)
    code, out, err = invoke("run", str(drill), "-q")
    assert code == 1 and out == ""
    assert err.startswith("FAIL nova-host-failure backend=sim seed=1 trace=")
    assert len(err.splitlines()) == 1


def test_the_keep_notice_of_an_in_process_lab_is_quiet_too() -> None:
    code, out, err = invoke("run", "nova-host-failure", "--keep", "-q")
    assert (code, out, err) == (0, "", "")
