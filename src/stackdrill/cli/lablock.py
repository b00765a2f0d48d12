"""One command at a time on a named lab: an exclusive flock on the lab's lock file, held
for the whole command (read the record, act on the lab, write the record), so concurrent
commands queue instead of losing each other's steps.

The wait is bounded: a command that cannot get the lock within `STACKDRILL_LOCK_WAIT_S`
seconds (default 120) stops with an error naming the process that holds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from stackdrill.errors import LabStateError
from stackdrill.waiting import WaitTimeout, wait_until

DEFAULT_WAIT_S = 120.0
POLL_S = 0.05


def lock_wait_s() -> float:
    """How long a command waits for a busy lab ($STACKDRILL_LOCK_WAIT_S, else 120 s)."""
    text = os.environ.get("STACKDRILL_LOCK_WAIT_S", "")
    try:
        value = float(text) if text else DEFAULT_WAIT_S
    except ValueError:
        return DEFAULT_WAIT_S
    return value if 0 <= value < float("inf") else DEFAULT_WAIT_S


def _holder(path: Path) -> str:
    try:
        pid = path.read_text()[:16].strip()
    except OSError:
        return "another stackdrill command"
    return f"stackdrill process {pid}" if pid.isdigit() else "another stackdrill command"


def _still_linked(fd: int, path: Path) -> bool:
    """The file we locked is still the one at `path` (`down` unlinks it under the lock, so
    a waiter holding the old file must start over on the new one)."""
    try:
        now = path.stat(follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


@dataclass(frozen=True)
class _Locked:
    """An open lock file this process holds the lock of (a value, so fd 0 is not falsy)."""

    fd: int


def _take(path: Path, lab: str) -> _Locked | None:
    """One try at the lab's lock: the held file, or None while another command holds it
    (or `down` replaced the file under us, so the next try opens the new one)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise LabStateError(f"lab {lab!r}: cannot open its lock {path}: "
                            f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if _still_linked(fd, path):
        return _Locked(fd)
    os.close(fd)
    return None


@contextmanager
def hold(path: Path, lab: str, wait_s: float | None = None) -> Iterator[None]:
    """Hold the lab's lock for the block; LabStateError when it stays busy too long."""
    wait = lock_wait_s() if wait_s is None else wait_s
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = wait_until(partial(_take, path, lab), timeout=wait, interval=POLL_S,
                        what=f"the lock of lab {lab!r}").fd
    except WaitTimeout:
        raise LabStateError(f"lab {lab!r} is busy: {_holder(path)} has held it for "
                            f"over {wait:g} s (its lock: {path}); try again when it "
                            "is done") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
