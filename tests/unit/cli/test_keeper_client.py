"""Waiting for a lab keeper to bring its lab up (a real child process stands in for the
keeper): its progress is passed on while it works, and the wait ends as soon as the lab is
up, the keeper refused, or the keeper died, and within its bound when none of that comes."""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from stackdrill.backends import lifetime
from stackdrill.cli.keeper import client
from stackdrill.cli.keeper.place import KeeperPlace, KeeperState
from stackdrill.cli.keeper.protocol import KeeperRefused
from stackdrill.errors import InfrastructureError


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeeperPlace:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    spot = KeeperPlace("k1")
    spot.create()
    return spot


def _keeper(place: KeeperPlace, script: str) -> subprocess.Popen[bytes]:
    with place.log.open("ab") as log:
        return subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def working(place: KeeperPlace) -> Iterator[subprocess.Popen[bytes]]:
    proc = _keeper(place, "echo 'progress: booting a'; echo 'progress: booting b'; exec sleep 30")
    yield proc
    proc.kill()
    proc.wait()


def _say_later(place: KeeperPlace, state: Literal["ready", "failed"], address: str | None = None,
               error: str | None = None, exit_code: int | None = None) -> None:
    """The keeper's state as it would write it, a moment after the wait began."""
    said = KeeperState(state=state, lab="k1", backend="netns", home=str(place.home),
                       owner=lifetime.owner_token(), started_at=time.time(), address=address,
                       error=error, exit_code=exit_code)
    threading.Timer(0.3, place.say, [said]).start()


def test_the_lab_up_ends_the_wait_with_its_progress_passed_on(
        place: KeeperPlace, working: subprocess.Popen[bytes]) -> None:
    _say_later(place, "ready", address="/sock")
    seen: list[str] = []
    state = client._wait_ready(place, working, seen.append)
    assert (state.state, state.address) == ("ready", "/sock")
    assert seen == ["booting a", "booting b"]


def test_a_refusal_ends_the_wait_with_the_keepers_error_and_exit_code(
        place: KeeperPlace, working: subprocess.Popen[bytes]) -> None:
    _say_later(place, "failed", error="topology: x.yaml: no such host", exit_code=2)
    with pytest.raises(KeeperRefused, match="no such host") as caught:
        client._wait_ready(place, working, lambda _line: None)
    assert caught.value.exit_code == 2


def test_a_keeper_that_died_ends_the_wait_at_once_naming_its_log(place: KeeperPlace) -> None:
    proc = _keeper(place, "echo 'libvirt: connection refused'; exit 3")
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError) as caught:
        client._wait_ready(place, proc, lambda _line: None)
    assert str(caught.value) == (f"lab k1: its keeper exited (3) before the lab was up; "
                                 f"{place.log}: libvirt: connection refused")
    assert time.monotonic() - t0 < 5.0


def test_a_keeper_that_never_gets_there_is_a_hang_within_the_bound(
        place: KeeperPlace, working: subprocess.Popen[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "BRING_UP_S", 0.5)
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"^lab k1: not up within 0s; .*keeper\.log: "
                                                  r"progress: booting a \| progress: booting b$"):
        client._wait_ready(place, working, lambda _line: None)
    assert 0.4 <= time.monotonic() - t0 < 5.0
