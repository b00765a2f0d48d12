"""Which file a drill reference names: a path first, then a shipped drill's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill import shipped
from stackdrill.drill.load import find_drill
from stackdrill.errors import DrillError


def test_a_name_is_a_shipped_drill_when_no_such_file_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_drill("split-brain") == shipped.DRILLS / "split-brain.yaml"


def test_a_file_of_that_name_wins_over_the_shipped_drill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("split-brain").write_text("mine")
    assert find_drill("split-brain") == Path("split-brain")


def test_a_relative_path_is_read_from_base_first_then_from_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "d.yaml").write_text("x")
    (tmp_path / "only-here.yaml").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert find_drill("d.yaml", base=tmp_path / "tests") == tmp_path / "tests" / "d.yaml"
    assert find_drill("only-here.yaml", base=tmp_path / "tests") == Path("only-here.yaml")


def test_an_unknown_name_says_where_to_look(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DrillError) as caught:
        find_drill("no-such-drill")
    assert str(caught.value) == ("drill 'no-such-drill': no such file and no shipped drill "
                                 "of that name (see stackdrill list drills)")
    assert caught.value.exit_code == 2
