"""What a stackdrill process leaves behind dies with it: every live lab is destroyed at
interpreter exit and on SIGTERM/SIGHUP (Ctrl-C already unwinds through the runner's
`except BaseException`), and every scratch directory (a run's or a CLI command's engine
inventory) is removed on the way out.

A signal becomes SystemExit, so the code running at that moment unwinds (the drill
runner destroys its lab and removes its scratch directory on the way out) and atexit
then destroys whatever is left. What SIGKILL leaves, `stackdrill down --all` removes:
each scratch directory carries a marker naming its owner process, and only directories
with that marker whose owner is gone are removed.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import stat
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "stackdrill-"
OWNER_MARKER = ".stackdrill-owner"  # "PID START" of the process that made the directory


class Destroyable(Protocol):
    def destroy(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_state = {"atexit": False, "signals": False}
_lock = threading.Lock()


def register(lab: Destroyable) -> None:
    """Destroy `lab` at interpreter exit and on SIGTERM/SIGHUP unless unregistered."""
    with _lock:
        _live.add(lab)
        first = not _state["atexit"]
        _state["atexit"] = True
    if first:
        atexit.register(_destroy_live)
    handle_signals()


def unregister(lab: Destroyable) -> None:
    with _lock:
        _live.discard(lab)


def handle_signals() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit(128 + signal) so `with`/`finally` blocks
    run; only from the main thread and only where nobody else handles them already."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        if _state["signals"]:
            return
        _state["signals"] = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_signal)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds `with lab:` blocks and runs atexit


def _destroy_live() -> None:
    for lab in list(_live):
        try:
            lab.destroy()
        except Exception:
            log.exception("teardown at exit failed")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
    which tells a live owner from a later process that reused its pid; None: no such
    process, or a zombie (it has exited and only waits to be reaped — in a container whose
    PID 1 does not reap, that can be forever: proc(5), state "Z")."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else None


KEPT = "kept"  # the owner of a lab kept on purpose: nobody, and never reclaimed


def owner_token() -> str:
    """This process as the owner of something it made ("PID STARTTIME"): written on a lab's
    resources and scratch directories so a later cleanup can tell a live owner from a
    dead one (and from a later process that reused the pid)."""
    pid = os.getpid()
    return f"{pid} {_start_time(pid) or '?'}"


def owner_gone(token: str) -> bool:
    """True only when `token` names an owner process that no longer runs; a kept lab's
    token, a malformed one and a live owner are never gone (when unsure, keep)."""
    pid_text, _, started = token.strip().partition(" ")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    now_started = _start_time(pid)
    return now_started is None or (started not in ("", "?") and now_started != started)


@contextmanager
def scratch_dir(purpose: str) -> Iterator[Path]:
    """A private temporary directory marked with this process as its owner; removed when
    the block ends, however it ends (SIGTERM/SIGHUP too once `handle_signals` ran: the
    CLI installs it; under pytest a signal keeps pytest's own meaning)."""
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{purpose}-"))
    try:
        (path / OWNER_MARKER).write_text(owner_token() + "\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _dead_owner(path: Path) -> bool:
    """True only for a directory stackdrill made (our marker, a plain file, our uid) whose
    owner process is gone."""
    try:
        info = path.lstat()
        marker = (path / OWNER_MARKER).lstat()
        if not stat.S_ISDIR(info.st_mode) or not stat.S_ISREG(marker.st_mode) \
                or info.st_uid != os.geteuid() or marker.st_size > 64:
            return False
        return owner_gone((path / OWNER_MARKER).read_text())
    except OSError:
        return False


def remove_dead_scratch(root: Path | None = None) -> list[str]:
    """`stackdrill down --all`: remove the scratch directories of stackdrill processes
    that are gone (a SIGKILL, a power cut); never one without our marker, never one whose
    owner still runs. The names of what was removed."""
    folder = Path(root or tempfile.gettempdir())
    removed = []
    for path in sorted(folder.glob(f"{SCRATCH_PREFIX}*")):
        if _dead_owner(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed
