"""The code a random drill ran on, so a stored verdict can be found again and replayed.

A sweep's results are keyed by this version (TigerBeetle's fuzzers record results against
the commit): the git commit of the checkout stackdrill is imported from, marked dirty with
a hash of the uncommitted diff (so two different dirty trees never share results), or the
package version when stackdrill is not in a checkout (an installed wheel).
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import stackdrill

GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CodeVersion:
    """Which stackdrill code ran: a commit (maybe with uncommitted changes) or a release."""

    package: str  # stackdrill.__version__
    commit: str | None = None  # full sha of HEAD; None outside a git checkout
    dirty: bool = False  # tracked files differ from HEAD
    diff_sha: str = ""  # sha256 of `git diff HEAD` (first 12 hex digits) when dirty
    repo: str | None = None  # the checkout's top directory

    @property
    def key(self) -> str:
        """What results are stored and resumed under."""
        if self.commit is None:
            return f"stackdrill-{self.package}"
        return f"{self.commit}+dirty.{self.diff_sha}" if self.dirty else self.commit

    def describe(self) -> str:
        if self.commit is None:
            return f"stackdrill {self.package} (not a git checkout)"
        return f"commit {self.commit[:12]}" + (" with uncommitted changes" if self.dirty else "")


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@lru_cache(maxsize=1)
def code_version() -> CodeVersion:
    """The version of the stackdrill being imported (not of the current directory): each
    Dask worker asks its own, so a worker on another commit is noticed. Cached per process."""
    package_dir = Path(stackdrill.__file__).resolve().parent
    top = _git(package_dir, "rev-parse", "--show-toplevel")
    head = _git(package_dir, "rev-parse", "HEAD")
    if top is None or head is None:
        return CodeVersion(stackdrill.__version__)
    diff = _git(package_dir, "diff", "HEAD") or ""
    return CodeVersion(stackdrill.__version__, head.strip(), bool(diff),
                       hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else "",
                       top.strip())


def replay_command(seed: int) -> str:
    """Replays one seed with the code at hand (and shrinks it when it fails)."""
    return f"stackdrill fuzz --seed {seed} --shrink"


def pinned_command(seed: int, version: CodeVersion) -> str:
    """One shell line that replays `seed` on exactly the code that produced it: the
    commit's `src/` exported by `git archive` into a scratch directory (the checkout and its
    worktrees are left alone) and put first on PYTHONPATH. Outside a checkout it names the
    release; with uncommitted changes only the tree at hand has that code."""
    replay = f"{shlex.quote(sys.executable)} -m {replay_command(seed)}"
    if version.commit is None or version.repo is None:
        return f"{replay}  # stackdrill {version.package}"
    if version.dirty:
        return f"{replay}  # on {version.commit[:12]} + uncommitted changes ({version.diff_sha})"
    where = Path(tempfile.gettempdir()) / f"stackdrill-{version.commit[:12]}"
    q = shlex.quote
    return (f"mkdir -p {q(str(where))} && git -C {q(version.repo)} archive {version.commit} src"
            f" | tar -x -C {q(str(where))} && PYTHONPATH={q(str(where / 'src'))} {replay}")
