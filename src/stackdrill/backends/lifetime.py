"""Labs die with their process: every live lab is destroyed at interpreter exit and on
SIGTERM/SIGHUP (Ctrl-C already unwinds through the runner's `except BaseException`).

A signal becomes SystemExit, so the code running at that moment unwinds (the drill
runner destroys its lab on the way out) and atexit then destroys whatever is left. Used
by every backend whose labs hold real resources: namespaces, domains, bridges.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Destroyable(Protocol):
    def destroy(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_state = {"installed": False}
_lock = threading.Lock()


def register(lab: Destroyable) -> None:
    """Destroy `lab` at interpreter exit and on SIGTERM/SIGHUP unless unregistered."""
    with _lock:
        _live.add(lab)
        if _state["installed"]:
            return
        _state["installed"] = True
    atexit.register(_destroy_live)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


def unregister(lab: Destroyable) -> None:
    with _lock:
        _live.discard(lab)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds `with lab:` blocks and runs atexit


def _destroy_live() -> None:
    for lab in list(_live):
        try:
            lab.destroy()
        except Exception:
            log.exception("teardown at exit failed")
