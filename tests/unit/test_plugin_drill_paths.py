"""`run_drill` as a user calls it: a shipped drill by name, and a relative path that is
read from the test file's directory wherever pytest was started."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "lab" / "drills" / "quorum-two-node.yaml"
TOPOLOGY = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"


def test_run_drill_finds_a_shipped_drill_by_its_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_named="""
        def test_named(run_drill):
            report = run_drill("quorum-two-node")
            assert report.passed and report.drill == "quorum-two-node"
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_relative_drill_path_is_read_from_the_test_files_directory(
        pytester: pytest.Pytester) -> None:
    """pytest runs from the project root; the drill sits beside the test in tests/drills."""
    tests = pytester.mkdir("tests")
    (tests / "drills").mkdir()
    text = DRILL.read_text().replace("../topologies/two-node-clvm.yaml", str(TOPOLOGY))
    (tests / "drills" / "mine.yaml").write_text(text)
    (tests / "test_mine.py").write_text(
        "def test_mine(run_drill):\n"
        "    assert run_drill('drills/mine.yaml').passed\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=1)


def test_an_unknown_drill_name_says_where_to_look(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unknown="""
        def test_unknown(run_drill):
            run_drill("no-such-drill")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drill 'no-such-drill': no such file and no shipped drill "
                                 "of that name (see stackdrill list drills)*"])
