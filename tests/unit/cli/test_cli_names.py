"""`stackdrill run NAME`: a shipped drill by name, from any directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli


def test_run_finds_a_shipped_drill_by_name_from_an_empty_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "nova-host-failure"])
    assert result.exit_code == 0, result.output
    assert "PASS nova-host-failure backend=sim seed=1" in result.stdout


def test_run_with_an_unknown_name_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "nova-host-failur"])
    assert result.exit_code == 2
    assert result.stderr == ("stackdrill: error: drill 'nova-host-failur': no such file and "
                             "no shipped drill of that name (see stackdrill list drills)\n")
