"""Where lab keepers say what they are doing: a keeper's state is written atomically and
read back; the machine-wide list of keepers is this user's own directory, and a directory
someone else put at that name (or a link) is never written through."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from stackdrill.backends import lifetime
from stackdrill.cli.keeper import place
from stackdrill.cli.keeper.place import KeeperPlace, KeeperState, running_keepers


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


def _state(lab: str) -> KeeperState:
    return KeeperState(state="ready", lab=lab, backend="netns", home="/x",
                       owner=lifetime.owner_token(), started_at=time.time(), address="/s")


def test_a_keeper_is_listed_while_it_runs_and_forgotten_with_its_directory(tmp: Path) -> None:
    spot = KeeperPlace("alpha")
    key = spot.create()
    assert spot.key() == key and oct((spot.dir / "authkey").stat().st_mode)[-3:] == "600"
    spot.say(_state("alpha"))
    said = spot.state()
    assert said is not None and (said.lab, said.state) == ("alpha", "ready")
    assert [k.lab for k in running_keepers()] == ["alpha"]  # this process is its "keeper"
    spot.forget()
    assert not spot.dir.exists() and running_keepers() == []


def test_a_registry_that_is_a_link_is_never_written_through(tmp: Path) -> None:
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (tmp / f"stackdrill-keepers-{os.geteuid()}").symlink_to(elsewhere)
    assert place._registry() is None
    spot = KeeperPlace("beta")
    spot.create()
    spot.say(_state("beta"))
    assert list(elsewhere.iterdir()) == [] and running_keepers() == []
    assert spot.state() is not None  # the lab's own state is still written
