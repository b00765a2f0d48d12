"""`stackdrill coverage` as a user runs it: the table's rows as JSON, and a broken
catalogue refused with `file: path: problem` and exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
ARGS = ["--catalogue", str(ROOT / "peer-suites.yaml"), "--drills", str(ROOT / "lab" / "drills")]


def test_json_lists_every_situation_with_where_it_runs() -> None:
    result = CliRunner().invoke(cli, ["coverage", "--json", *ARGS])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    verify = next(r for r in rows if r["suite"] == "drbd9-tests" and r["test"] == "verify")
    assert verify["status"] == "covered" and verify["drills"] == ["drbd-verify"]
    assert verify["runs_on"] == ["sim", "libvirt"] and verify["real"] == ["libvirt"]
    assert any(r["status"] == "missing" for r in rows)


def test_a_broken_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "peers.yaml"
    bad.write_text("situations:\n  - {suite: jepsen, test: t, rehearses: r, asserts: a}\n")
    result = CliRunner().invoke(cli, ["coverage", "--catalogue", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == (f"stackdrill: error: {bad}: situations[0]: give drills and "
                             "scenarios, or missing, or out_of_scope\n"), result.stderr
