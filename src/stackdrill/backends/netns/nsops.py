"""Low-level namespace operations: create/remove, netlink and sockets inside, commands.

pyroute2 (imported where used, so that the backend's declaration imports without it)
creates each namespace and each in-namespace netlink socket through a forked
child (~7 ms each). A lab creates its namespaces and opens sockets in them by switching
the calling thread into a namespace for a moment (unshare and setns are per-thread for
network namespaces), which costs well under a millisecond; that is what keeps bring-up
under 50 ms per host.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from stackdrill.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


def create_namespaces(names: Sequence[str]) -> None:
    """Create every named namespace from this thread: unshare gives the thread a new one,
    pyroute2 binds it to its name, and the thread goes home (a forked child did this
    before and cost ~3.5 ms of a 3-host lab's ~15 ms bring-up floor)."""
    if not names:
        return
    for name in names:
        if (NETNS_DIR / name).exists():
            raise FileExistsError(f"namespace {name} already exists")
    from pyroute2 import netns  # here: the backend's declaration must import without it

    with _setns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            for name in names:
                if _libc.unshare(CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"creating namespace {name}: {os.strerror(err)}")
                netns._create(name, libc=_libc, pid="thread-self")
        finally:
            try:
                _setns(home)
            finally:
                os.close(home)


def list_namespaces() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def ns_pids(name: str) -> list[int]:
    """Processes whose network namespace is `name` (what `ip netns pids` shows)."""
    return pids_by_namespace([name])[name]


def pids_by_namespace(names: Sequence[str]) -> dict[str, list[int]]:
    """The processes in each of `names`, from one pass over /proc (a pass per namespace
    made a 50-host teardown scan /proc 51 times). A process's namespace is read from the
    link /proc/PID/ns/net, whose text names the namespace's nsfs inode: reading a link
    costs under half a stat of the namespace it points to."""
    wanted: dict[str, str] = {}
    for name in names:
        try:
            wanted[f"net:[{(NETNS_DIR / name).stat().st_ino}]"] = name
        except FileNotFoundError:
            continue
    found: dict[str, list[int]] = {name: [] for name in names}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):  # noqa: PTH208 - names, not Paths: see below
        if not entry.isdigit():
            continue
        try:
            # a string, not a Path: this runs for every process on the machine
            link = os.readlink(f"/proc/{entry}/ns/net")  # noqa: PTH115
        except OSError:
            continue
        owner = wanted.get(link)
        if owner is not None:
            found[owner].append(int(entry))
    return found


KILL_WAIT_S = 10.0  # a SIGKILLed process is gone within ms; a loaded machine takes longer


def kill_pids(pids: Sequence[int]) -> None:
    """SIGKILL each and wait (bounded) until none runs any more, so that a teardown that
    returned left nothing serving (a kept lab's nbdkit outlived `down` on a loaded run)."""
    sent = []
    for pid in pids:
        if pid == os.getpid():
            continue
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            sent.append(pid)
    try:
        wait_until(lambda: not any(_alive(pid) for pid in sent), timeout=KILL_WAIT_S,
                   interval=0.01, what=f"processes {sent} gone after SIGKILL")
    except WaitTimeout:
        left = [pid for pid in sent if _alive(pid)]
        log.warning("processes %s still running %.0f s after SIGKILL", left, KILL_WAIT_S)


def _alive(pid: int) -> bool:
    """Running: neither gone nor a zombie (a zombie has stopped, only its parent's wait
    is missing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def remove_namespace(name: str) -> None:
    """Kill what runs inside and drop the namespace (its interfaces go with it)."""
    remove_namespaces([name])


def remove_namespaces(names: Sequence[str]) -> None:
    """Kill what runs in any of `names` at once, then drop them in the order given."""
    from pyroute2 import netns

    kill_pids([pid for pids in pids_by_namespace(names).values() for pid in pids])
    for name in names:
        with suppress(FileNotFoundError):
            netns.remove(name, libc=_libc)


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block with this thread inside namespace `name`, then return."""
    with _setns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)


def iproute(name: str) -> Any:
    """A pyroute2 IPRoute bound to namespace `name` (the caller closes it)."""
    from pyroute2 import IPRoute

    with inside(name):
        return IPRoute()


# pyroute2 0.9's sync IPRoute runs an asyncio loop bound to the thread that made it; used
# from another thread some lookups silently come back empty. So every long-lived socket
# is created and used on one netlink thread only.
_netlink = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stackdrill-netlink")
T = TypeVar("T")


def on_netlink_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if threading.current_thread().name.startswith("stackdrill-netlink"):
        return fn(*args, **kwargs)
    return _netlink.submit(fn, *args, **kwargs).result(timeout=60)


class Netlink:
    """An IPRoute in namespace `ns` that any thread may use (calls hop to one thread)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._ipr = on_netlink_thread(iproute, ns)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ipr, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return on_netlink_thread(attr, *args, **kwargs)

        return call


def close_netlinks(socks: Sequence[Netlink]) -> None:
    """Close many in one hop to the netlink thread (a hop each cost a 50-host teardown
    more than the namespaces' removal)."""
    def close_each() -> None:
        for sock in socks:
            sock.close()

    if socks:
        on_netlink_thread(close_each)


@contextmanager
def ipr(name: str) -> Iterator[Any]:
    sock = iproute(name)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def ipr_root() -> Iterator[Any]:
    """IPRoute in this process's own namespace (only for cleanup of stray lab interfaces)."""
    from pyroute2 import IPRoute

    sock = IPRoute()
    try:
        yield sock
    finally:
        sock.close()


def socket_in(name: str, family: int = socket.AF_INET,
              kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket that lives in namespace `name` for its whole life."""
    with inside(name):
        return socket.socket(family, kind)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run(ns: str, argv: Sequence[str], timeout: float = 10.0,
        check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command inside `ns` via `ip netns exec` (sysfs then shows the namespace)."""
    cmd = ["ip", "netns", "exec", ns, *argv]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                            input=stdin, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def spawn(ns: str, argv: Sequence[str], *, tie_to_parent: bool = True,
          stdout: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start a long-running process inside `ns`; it dies with us unless told otherwise.

    PR_SET_PDEATHSIG fires when the parent *thread* ends, so every tied child is started
    from one long-lived spawner thread rather than from a pool or timer thread.
    """
    return _spawner.submit(_spawn, ns, list(argv), tie_to_parent, stdout).result(timeout=30)


_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stackdrill-spawner")


def _spawn(ns: str, argv: list[str], tie_to_parent: bool,
           stdout: int | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv],
        stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if tie_to_parent else None,  # noqa: PLW1509 - one thread
        start_new_session=True,
    )


def has_root() -> bool:
    return os.geteuid() == 0
