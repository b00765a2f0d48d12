"""The lab store lives in the user's state directory (XDG), not in the current one: a lab
brought up in one directory is driven and listed from any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli, labstore

TOPOLOGY = str(Path(__file__).resolve().parents[3] / "lab" / "topologies" / "drbd-pair.yaml")


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with a home of their own and no STACKDRILL_HOME / XDG_STATE_HOME."""
    monkeypatch.delenv("STACKDRILL_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": None})
    return result.exit_code, result.stdout, result.stderr


def test_the_default_store_is_the_users_state_directory(user: Path) -> None:
    assert labstore.home() == user / "home" / ".local" / "state" / "stackdrill"


def test_xdg_state_home_is_used_when_absolute(user: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(user / "state"))
    assert labstore.home() == user / "state" / "stackdrill"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # invalid by the spec: ignored
    assert labstore.home() == user / "home" / ".local" / "state" / "stackdrill"


def test_stackdrill_home_still_overrides(user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(user / "state"))
    monkeypatch.setenv("STACKDRILL_HOME", str(user / "mine"))
    assert labstore.home() == user / "mine"


def test_a_lab_up_in_one_directory_is_found_from_another(
        user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (user / "a").mkdir()
    (user / "b").mkdir()
    monkeypatch.chdir(user / "a")
    assert invoke("up", TOPOLOGY, "--lab", "xdg")[0] == 0
    monkeypatch.chdir(user / "b")
    code, out, err = invoke("status", "--lab", "xdg", "--json")
    assert code == 0, err
    assert json.loads(out)["lab"] == "xdg"
    code, out, _err = invoke("list", "labs", "--json")
    store = str(user / "home" / ".local" / "state" / "stackdrill")
    assert ("xdg", store) in [(r["lab"], r["store"]) for r in json.loads(out)]
    assert not (user / "a" / ".stackdrill").exists()
    assert invoke("down", "--lab", "xdg")[0] == 0


def test_labs_left_in_the_old_store_are_pointed_out(
        user: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(user)
    monkeypatch.setenv("STACKDRILL_HOME", ".stackdrill")
    assert invoke("up", TOPOLOGY, "--lab", "old")[0] == 0
    monkeypatch.delenv("STACKDRILL_HOME")
    code, _out, err = invoke("list", "labs")
    assert code == 0
    assert err == ("stackdrill: note: ./.stackdrill holds lab(s) old from an older version; "
                   "STACKDRILL_HOME=.stackdrill reaches them\n")
