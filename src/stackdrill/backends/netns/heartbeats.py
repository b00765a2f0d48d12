"""Compute-service heartbeats over the management network, as Nova's service reports.

Each host runs a tiny bash loop (no fork per beat: `printf > /dev/udp/...` and
`read -t` on a FIFO are builtins) sending its name to the controller's management
address; a receiver thread holds a UDP socket opened inside the controller's namespace.
So a crash (its processes killed), a pulled management link or a partition stops the
heartbeats for real, while the power controller still answers.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from stackdrill.backends.netns import nsops

log = logging.getLogger(__name__)

PORT = 4199
INTERVAL_S = 0.2
MAX_BEATS = 18000  # one hour at 0.2 s; the loop always ends by itself


class Heartbeats:
    def __init__(self, controller_ns: str, address: str, now: Callable[[], float],
                 fifo_dir: Path, tie_to_parent: bool = True) -> None:
        self.controller_ns = controller_ns
        self.address = address
        self.now = now
        self.fifo_dir = fifo_dir
        self.tie_to_parent = tie_to_parent
        self._last: dict[str, float] = {}
        self._senders: dict[str, subprocess.Popen[bytes]] = {}
        self._stop = threading.Event()
        self._sock = nsops.socket_in(controller_ns, kind=socket.SOCK_DGRAM)
        self._sock.bind((address, PORT))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._receive, daemon=True,
                                        name="stackdrill-heartbeats")
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(256)
            except TimeoutError:
                continue
            except OSError:
                return
            self._last[data.decode(errors="replace").strip()] = self.now()

    def start(self, host: str, host_ns: str) -> None:
        """Start the host's heartbeat sender (its compute service coming up)."""
        old = self._senders.get(host)
        if old is not None and old.poll() is None:
            return
        fifo = self.fifo_dir / f"hb-{host}"
        if not fifo.exists():
            os.mkfifo(fifo)
        script = (f"exec 3<>{fifo}; for ((i=0;i<{MAX_BEATS};i++)); do "
                  f"printf %s {host} >/dev/udp/{self.address}/{PORT} 2>/dev/null; "
                  f"read -t {INTERVAL_S} -u 3; done")
        self._senders[host] = nsops.spawn(host_ns, ["bash", "-c", script],
                                          tie_to_parent=self.tie_to_parent)

    def stop(self, host: str) -> None:
        proc = self._senders.pop(host, None)
        if proc is not None:
            proc.kill()
            proc.wait(timeout=5)

    def rebase(self, shift: float) -> None:
        """The lab's time 0 moved `shift` seconds later: beats during the build count from
        time 0, as every lab time does (never negative)."""
        for host, at in list(self._last.items()):
            self._last[host] = max(0.0, at - shift)

    def last(self, host: str) -> float | None:
        return self._last.get(host)

    def shutdown(self) -> None:
        self._stop.set()
        for host in list(self._senders):
            self.stop(host)
        self._thread.join(timeout=2)
        self._sock.close()
