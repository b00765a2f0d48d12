"""`down --all` on vagrant labs: a lab is removed only when its owner process is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("libvirt")

from stackdrill.backends import lifetime
from stackdrill.backends.vagrant import backend as vagrant_backend
from stackdrill.backends.vagrant.backend import VagrantBackend
from stackdrill.backends.vagrant.lab import VagrantRun


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(vagrant_backend, "LAB_ROOT", tmp_path)
    # the libvirt part of the teardown looks on the in-process test driver
    monkeypatch.setenv("STACKDRILL_LIBVIRT_URI", "test:///default")
    (tmp_path / "home").mkdir()
    return tmp_path


def state_of(root: Path, name: str, owner: str) -> Path:
    run = VagrantRun(state=root / name, env={})
    run.state.mkdir()
    run.set_owner(owner)
    return run.state


def dead_owner() -> str:
    """The token of a process that has exited."""
    out = subprocess.run([sys.executable, "-c",
                          "from stackdrill.backends import lifetime; "
                          "print(lifetime.owner_token())"],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_down_all_removes_only_the_labs_whose_owner_is_gone(lab_root: Path) -> None:
    """A lab in its bring-up has no marked domain yet (vagrant up makes them), so the owner
    in its state directory is what keeps `down --all` in another shell from removing it."""
    alive = state_of(lab_root, "alive", lifetime.owner_token())
    kept = state_of(lab_root, "kept", lifetime.KEPT)
    dead = state_of(lab_root, "dead", dead_owner())
    removed = VagrantBackend.cleanup_all()
    assert not dead.exists()
    assert any("dead" in line for line in removed), removed
    assert alive.exists() and kept.exists()
    assert (lab_root / "home").exists()  # the box cache is nobody's lab
    assert VagrantBackend.kept_labs() == ["kept"]


def test_a_name_outside_the_vagrant_root_is_refused(lab_root: Path) -> None:
    from stackdrill.errors import UnsupportedError

    for name in ("../etc", "home", ".."):
        with pytest.raises(UnsupportedError):
            VagrantBackend.teardown(name)
