"""Network block volumes: nbdkit on the storage host, reached over the lab's underlay.

Why NBD and not iSCSI: this kernel has no iSCSI initiator (`CONFIG_ISCSI_TCP` and the
SCSI target core are off) and no NBD client either, so the initiator must live in
userspace. tgt would give an iSCSI target but the only userspace initiator (libiscsi)
has no binding for the project's Python; NBD's protocol is small and documented, nbdkit
(Debian `nbdkit`) serves a file with FUA/flush, and a compute host reconnects to it with
a few lines of Python, as qemu's NBD driver would. The data lives in a sparse file that
only the storage host's nbdkit serves: when that host crashes the volume is unreachable,
when it boots again the export comes back and clients on other hosts reconnect.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.names import LabNames
from stackdrill.backends.netns.nbd import NbdClient
from stackdrill.backends.netns.underlay import Underlay
from stackdrill.errors import UnsupportedError
from stackdrill.topology import Topology
from stackdrill.topology.model import NetworkPurpose
from stackdrill.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

NBD_PORT_BASE = 10809
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Export:
    volume: str
    host: str  # the storage host serving it
    address: str
    port: int
    path: Path  # backing file (sparse)

    @property
    def uri(self) -> str:
        return f"nbd://{self.address}:{self.port}/{self.volume}"


def storage_address(topology: Topology, underlay: Underlay, host: str) -> str:
    """The host's address on a storage network, else management, else any network."""
    for purpose in (NetworkPurpose.STORAGE, NetworkPurpose.MANAGEMENT):
        for net in topology.networks_for(purpose):
            if (host, net.name) in underlay.links:
                return underlay.link(host, net.name).address
    for lk in underlay.host_links(host):
        return lk.address
    raise UnsupportedError(f"storage host {host!r} has no network to serve volumes on")


def _nbdkit(exp: Export) -> list[str]:
    return ["nbdkit", "--foreground", "--newstyle", "-i", exp.address, "-p", str(exp.port),
            "file", f"file={exp.path}"]


def _read_pidfile(path: Path) -> int | None:
    """The pid a daemonized nbdkit writes after its fork, so maybe a moment after its
    parent returned; None when none came within START_TIMEOUT_S (it still serves, and
    `down` still finds it in the namespace)."""
    try:
        return wait_until(partial(_pid_in, path), timeout=START_TIMEOUT_S, interval=0.02,
                          what=f"nbdkit's pid in {path}")
    except WaitTimeout:
        log.warning("nbdkit wrote no pid to %s", path)
        return None


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):  # not written yet, or half written
        return None


class Volumes:
    """Exports every topology volume from its storage host with nbdkit."""

    def __init__(self, names: LabNames, topology: Topology, underlay: Underlay,
                 state_dir: Path, tie_to_parent: bool = True) -> None:
        self.names = names
        self.tie_to_parent = tie_to_parent
        self.exports: dict[str, Export] = {}
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.detached: dict[str, int] = {}  # volume -> pid of its daemon (a kept lab)
        for v_idx, vol in enumerate(topology.volumes):
            pv = topology.volume_group(vol.vg).pv
            if pv.drbd is not None or pv.host is None:
                raise UnsupportedError(
                    f"volume {vol.name}: the netns backend has no DRBD (kernel without the "
                    f"module); give its volume group a local pv (host + disk)")
            path = state_dir / f"{vol.name}.img"
            self.exports[vol.name] = Export(vol.name, pv.host,
                                            storage_address(topology, underlay, pv.host),
                                            NBD_PORT_BASE + v_idx, path)

    def create_files(self, size_bytes: dict[str, int]) -> None:
        """The sparse backing files, in the lab's state directory (made here: a lab
        without volumes has none to make at bring-up and remove at teardown)."""
        for name, exp in self.exports.items():
            exp.path.parent.mkdir(parents=True, exist_ok=True)
            with exp.path.open("wb") as fh:
                fh.truncate(size_bytes[name])

    def start_host(self, host: str) -> None:
        """Start the exports a storage host serves (what its boot does)."""
        started = [e for e in self.exports.values() if e.host == host]
        for exp in started:
            if exp.volume in self.servers and self.servers[exp.volume].poll() is None:
                continue
            self.servers[exp.volume] = nsops.spawn(self.names.host_ns(host), _nbdkit(exp),
                                                   tie_to_parent=self.tie_to_parent)
        for exp in started:
            self._wait_listening(exp)

    def _wait_listening(self, exp: Export) -> None:
        def listening() -> bool:
            if self.servers[exp.volume].poll() is not None:
                raise RuntimeError(f"nbdkit for {exp.volume} exited "
                                   f"({self.servers[exp.volume].returncode})")
            return self.reachable_from(exp.volume, exp.host, timeout=0.5)

        wait_until(listening, timeout=START_TIMEOUT_S, interval=0.02,
                   what=f"nbdkit for {exp.volume} listening at {exp.uri}")
        log.info("volume %s exported at %s", exp.volume, exp.uri)

    def stop_host(self, host: str) -> None:
        for exp in self.exports.values():
            proc = self.servers.get(exp.volume)
            if exp.host == host and proc is not None:
                proc.kill()
                proc.wait(timeout=5)

    def detach(self, pid_dir: Path) -> dict[str, int | None]:
        """Restart every running export as a daemon of its own (the lab is kept and
        outlives this process; nbdkit in the foreground exits with its parent); volume ->
        pid of its new server, None where none was running."""
        pids: dict[str, int | None] = {}
        for exp in self.exports.values():
            old = self.servers.pop(exp.volume, None)
            if old is None or old.poll() is not None:
                pids[exp.volume] = None
                continue
            old.kill()
            old.wait(timeout=5)
            pidfile = pid_dir / f"nbdkit-{exp.volume}.pid"
            argv = _nbdkit(exp)
            argv[argv.index("--foreground")] = f"--pidfile={pidfile}"
            # nbdkit forks once its socket listens, so it serves when this returns
            nsops.run(self.names.host_ns(exp.host), argv, timeout=START_TIMEOUT_S)
            pid = _read_pidfile(pidfile)
            if pid is not None:
                self.detached[exp.volume] = pid
            pids[exp.volume] = pid
        return pids

    def serving(self, volume: str) -> bool:
        proc = self.servers.get(volume)
        return proc is not None and proc.poll() is None

    def reachable_from(self, volume: str, host_ns_host: str, timeout: float = 2.0) -> bool:
        """An NBD handshake with the export succeeds from `host`'s namespace."""
        exp = self.exports[volume]
        sock = nsops.socket_in(self.names.host_ns(host_ns_host))
        sock.settimeout(timeout)
        try:
            sock.connect((exp.address, exp.port))
            client = NbdClient(sock, exp.volume)
            client.close()
            return True
        except OSError:
            sock.close()
            return False

    def shutdown(self) -> None:
        nsops.kill_pids(list(self.detached.values()))
        self.detached.clear()
        for proc in self.servers.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.servers.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("nbdkit pid %d did not exit", proc.pid)

