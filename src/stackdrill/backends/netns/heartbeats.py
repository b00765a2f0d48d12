"""Compute-service heartbeats over the management network, as Nova's service reports.

One sender thread beats for every host that is up, each through a UDP socket opened inside
that host's namespace, to the controller's management address; a receiver thread holds a
UDP socket opened inside the controller's namespace. The kernel routes each beat as the
host's own packet, so a pulled management link or a partition stops it for real, and a
power cut closes the host's socket with its processes. One thread for all hosts instead of
a process per host: starting a process in a namespace cost 15-17 ms a host at bring-up.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from contextlib import suppress

from stackdrill.backends.netns import nsops

log = logging.getLogger(__name__)

PORT = 4199
INTERVAL_S = 0.2
MAX_BEATS = 18000  # one hour at 0.2 s; the sender always ends by itself


class Heartbeats:
    def __init__(self, controller_ns: str, address: str, now: Callable[[], float]) -> None:
        self.controller_ns = controller_ns
        self.address = address
        self.now = now
        self._last: dict[str, float] = {}
        self._senders: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock_lock = threading.Lock()
        self._sock = nsops.socket_in(controller_ns, kind=socket.SOCK_DGRAM)
        self._sock.bind((address, PORT))
        self._receiver = threading.Thread(target=self._receive, daemon=True,
                                          name="stackdrill-heartbeats-in")
        self._sender = threading.Thread(target=self._send, daemon=True,
                                        name="stackdrill-heartbeats-out")
        self._receiver.start()
        self._sender.start()

    def _receive(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data = self._sock.recv(256)
                except OSError:
                    return
                if data:  # an empty read is the shutdown's wake-up
                    self._last[data.decode(errors="replace").strip()] = self.now()
        finally:
            with self._sock_lock:  # not while shutdown() wakes it
                self._sock.close()

    def _send(self) -> None:
        for _ in range(MAX_BEATS):
            with self._lock:
                for host, sock in self._senders.items():
                    # no route, no neighbour, a full queue: a lost beat, as on a real host
                    with suppress(OSError):
                        sock.sendto(host.encode(), (self.address, PORT))
            if self._stop.wait(INTERVAL_S):
                return

    def start(self, host: str, host_ns: str) -> None:
        """The host's compute service comes up and beats from its namespace."""
        with self._lock:
            if host in self._senders:
                return
            sock = nsops.socket_in(host_ns, kind=socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._senders[host] = sock

    def stop(self, host: str) -> None:
        with self._lock:
            sock = self._senders.pop(host, None)
        if sock is not None:
            sock.close()

    def rebase(self, shift: float) -> None:
        """The lab's time 0 moved `shift` seconds later: beats during the build count from
        time 0, as every lab time does (never negative)."""
        for host, at in list(self._last.items()):
            self._last[host] = max(0.0, at - shift)

    def last(self, host: str) -> float | None:
        return self._last.get(host)

    def shutdown(self) -> None:
        """Stop beating and receiving without waiting for the two threads (joining them
        cost a teardown up to 4 ms of scheduling on a loaded machine): the sender finds no
        socket left and ends at its next wake-up; the receiver, woken, sees the stop and
        closes its socket itself (under a lock, so never while this call still uses it)."""
        self._stop.set()
        with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sock in senders:
            sock.close()
        with self._sock_lock, suppress(OSError):  # closed already: the receiver is gone
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes its recv (Linux: even for UDP)
