"""The code version results are stored under, and the line that replays a seed on it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import stackdrill
from stackdrill.fuzz.version import CodeVersion, code_version, pinned_command


def test_the_version_is_the_commit_of_the_checkout_stackdrill_is_imported_from() -> None:
    here = Path(stackdrill.__file__).parent
    if shutil.which("git") is None or subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
            check=False).returncode:
        pytest.skip("stackdrill is not imported from a git checkout")
    head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    diff = subprocess.run(["git", "-C", str(here), "diff", "HEAD"], capture_output=True,
                          text=True, check=True).stdout
    version = code_version()
    assert version.commit == head and version.dirty == bool(diff)
    assert version.key == (f"{head}+dirty.{version.diff_sha}" if diff else head)


def test_dirty_trees_and_releases_have_keys_of_their_own() -> None:
    assert CodeVersion("0.1.0").key == "stackdrill-0.1.0"
    dirty = CodeVersion("0.1.0", "a" * 40, True, "0123456789ab", "/src")
    assert dirty.key == "a" * 40 + "+dirty.0123456789ab"
    assert CodeVersion("0.1.0", "a" * 40, repo="/src").key == "a" * 40


def test_the_replay_line_pins_a_clean_commit_and_says_when_it_cannot() -> None:
    clean = pinned_command(7, CodeVersion("0.1.0", "a" * 40, repo="/my src"))
    assert "git -C '/my src' archive " + "a" * 40 + " src | tar -x -C " in clean
    assert clean.endswith("-m stackdrill fuzz --seed 7 --shrink")
    dirty = pinned_command(7, CodeVersion("0.1.0", "a" * 40, True, "0123456789ab", "/src"))
    assert "archive" not in dirty and dirty.endswith("+ uncommitted changes (0123456789ab)")
    assert pinned_command(7, CodeVersion("0.1.0")).endswith("--shrink  # stackdrill 0.1.0")
