"""Instances: a namespace per guest on its host's overlay bridge, and its workload process.

The guest's NIC is the instance namespace's interface (its MAC/IP from the topology),
joined by a veth to the host's overlay bridge like a Nova tap. The guest's "hypervisor"
process (the workload) runs in the host namespace, as qemu does, and holds the NBD
connections to its volumes. After a move the instance announces itself with a
gratuitous ARP: a static FDB update alone leaves the destination's bridge believing the
MAC is still behind vxlan0 (MACHINE-FACTS).
"""

from __future__ import annotations

import fcntl
import json
import logging
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdrill.api import GuestStarted, GuestStopped, TraceWriter, WriteOp
from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.names import LabNames
from stackdrill.overlay import OverlayController
from stackdrill.topology import Topology
from stackdrill.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

WORKLOAD = Path(__file__).with_name("workload.py")
READY_TIMEOUT_S = 15.0
READY_POLL_S = 0.05  # how often a workload not yet ready is checked for being alive


@dataclass
class Guest:
    """One incarnation of an instance's workload on one host."""

    instance: str
    host: str
    incarnation: int
    proc: subprocess.Popen[bytes]
    writes: bool = False  # its workload writes records (LabOptions.writers)
    ready: threading.Event = field(default_factory=threading.Event)
    last_ok: float | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None


class Instances:
    """Ports and workloads of every instance in one lab."""

    def __init__(self, names: LabNames, topology: Topology, overlay: OverlayController,
                 sock: Callable[[str], Any], now: Callable[[], float], t0: float,
                 tie_to_parent: bool = True, interval: float = 2.0,
                 writers: frozenset[str] | None = None,
                 drop_sock: Callable[[str], None] | None = None,
                 tracer: TraceWriter | None = None) -> None:
        self.names = names
        self.topology = topology
        self.overlay = overlay
        self.sock = sock
        self.drop_sock = drop_sock or (lambda _ns: None)
        # the lab's events: guests started and stopped, what the fencing checks read
        self.tracer = tracer or TraceWriter(now)
        self.now = now
        self.t0 = t0  # time.monotonic() at lab start: converts the workload's timestamps
        self.tie_to_parent = tie_to_parent
        self.index = {inst.name: i for i, inst in enumerate(topology.instances)}
        self.plugged: dict[str, str] = {}  # instance -> host whose bridge it is on
        self.interval = interval
        self.writers = writers if writers is not None else frozenset(self.index)
        self.guests: list[Guest] = []
        # guests defined on a host survive its crash and are resumed when it boots, unless
        # the control plane says they were evacuated (nova-compute's init_host)
        self.defined: dict[str, dict[str, dict[str, str]]] = {}
        self.boot_hook: Callable[[str, list[str]], list[str]] | None = None
        self._ops: dict[tuple[str, int, str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def rebase(self, shift: float) -> None:
        """The lab's time 0 moved `shift` seconds later: convert what was recorded so far."""
        with self._lock:
            self.t0 += shift
            for op in self._ops.values():  # writes during the build count from time 0
                op["invoked"] = max(0.0, op["invoked"] - shift)
                if op["completed"] is not None:
                    op["completed"] = max(0.0, op["completed"] - shift)
            for guest in self.guests:
                if guest.last_ok is not None:
                    guest.last_ok = max(0.0, guest.last_ok - shift)

    # ---------------------------------------------------------------- ports

    def plug(self, instance: str, host: str) -> None:
        """Create (or move) the instance's port onto `host`'s overlay bridge and announce it."""
        spec = self.topology.instance(instance)
        if self.plugged.get(instance) == host:
            return
        if instance in self.plugged:
            self.unplug(instance, self.plugged[instance])
        ns = self.names.instance_ns(instance)
        nsops.create_namespaces([ns])
        if spec.overlay is not None and not self.overlay.overlays[spec.overlay].spec.guest_ipv6:
            # before the interface exists: it inherits `default` and never speaks IPv6
            nsops.run(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1",
                           "net.ipv6.conf.all.disable_ipv6=1"])
        self.plugged[instance] = host
        ipr = self.sock(ns)
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        if spec.overlay is None or spec.mac is None or spec.ip is None:
            return
        state = self.overlay.overlays[spec.overlay]
        hipr = self.sock(self.names.host_ns(host))
        port = self.names.instance_port(self.index[instance])
        eth = self.names.instance_if()
        hipr.link("add", ifname=port, kind="veth", mtu=state.spec.mtu,
                  peer={"ifname": eth, "net_ns_fd": ns, "mtu": state.spec.mtu,
                        "address": spec.mac})
        br = hipr.link_lookup(ifname=self.names.overlay_bridge(state.index))[0]
        pidx = hipr.link_lookup(ifname=port)[0]
        hipr.link("set", index=pidx, master=br, state="up")
        eidx = ipr.link_lookup(ifname=eth)[0]
        plen = int(state.spec.cidr.split("/")[1])
        ipr.addr("add", index=eidx, address=spec.ip, prefixlen=plen)
        ipr.link("set", index=eidx, state="up")
        self.overlay.locate(spec.overlay, spec.mac, host)
        if state.spec.announce:
            self.announce(instance)

    def unplug(self, instance: str, host: str) -> None:
        """Remove the port, then the instance's namespace. The host's end of the veth is
        deleted first and at once: a namespace's interfaces go only when the kernel gets
        to it, and a port still there refuses the next plug on the same host."""
        if self.plugged.get(instance) != host:
            return
        spec = self.topology.instance(instance)
        hipr = self.sock(self.names.host_ns(host))
        for index in hipr.link_lookup(ifname=self.names.instance_port(self.index[instance])):
            hipr.link("del", index=index)
        self.drop_sock(self.names.instance_ns(instance))
        nsops.remove_namespace(self.names.instance_ns(instance))
        del self.plugged[instance]
        if spec.overlay and spec.mac:
            self.overlay.locate(spec.overlay, spec.mac, None)

    def announce(self, instance: str, count: int = 2) -> None:
        """Gratuitous ARP from the instance: every bridge on the overlay relearns its MAC."""
        spec = self.topology.instance(instance)
        if spec.mac is None or spec.ip is None:
            return
        mac = bytes.fromhex(spec.mac.replace(":", ""))
        ip = socket.inet_aton(spec.ip)
        arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip, b"\xff" * 6, ip)
        frame = b"\xff" * 6 + mac + struct.pack(">H", 0x0806) + arp
        with nsops.inside(self.names.instance_ns(instance)):
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            raw.bind((self.names.instance_if(), 0))
            for _ in range(count):
                raw.send(frame)
        finally:
            raw.close()

    def set_ports(self, host: str, up: bool) -> None:
        """All instance ports on `host` up or down (a crashed host's taps lose carrier)."""
        hipr = self.sock(self.names.host_ns(host))
        for instance, where in self.plugged.items():
            if where != host:
                continue
            found = hipr.link_lookup(ifname=self.names.instance_port(self.index[instance]))
            if found:
                hipr.link("set", index=found[0], state="up" if up else "down")

    # ---------------------------------------------------------------- workloads

    def start(self, instance: str, host: str, volume_uris: dict[str, str]) -> Guest:
        """Start the instance's workload on `host` as a new incarnation; wait until ready."""
        with self._lock:
            if any(g.alive() for g in self.guests if g.instance == instance and g.host == host):
                raise RuntimeError(f"{instance} already runs on {host}")
            incarnation = 1 + max((g.incarnation for g in self.guests
                                   if g.instance == instance), default=0)
        writes = instance in self.writers and bool(volume_uris)
        argv = [sys.executable, str(WORKLOAD), "--instance", instance,
                "--incarnation", str(incarnation), "--interval", str(self.interval)]
        for vol, uri in sorted(volume_uris.items() if writes else ()):
            argv += ["--volume", f"{vol}={uri}"]
        proc = nsops.spawn(self.names.host_ns(host), argv, stdout=subprocess.PIPE,
                           tie_to_parent=self.tie_to_parent)
        guest = Guest(instance, host, incarnation, proc, writes)
        with self._lock:
            self.guests.append(guest)
            self.defined.setdefault(host, {})[instance] = dict(volume_uris)
        self.tracer.emit(GuestStarted(host, instance, incarnation))
        reader = threading.Thread(target=self._read, args=(guest,), daemon=True,
                                  name=f"workload-{instance}-{incarnation}")
        self._readers.append(reader)
        reader.start()

        def ready() -> bool:  # the event's own wait is the pause: no sleep after "ready"
            if guest.ready.wait(READY_POLL_S):
                return True
            if not guest.alive():
                raise RuntimeError(f"workload of {instance} on {host} did not start "
                                   f"(exit {proc.poll()})")
            return False

        try:
            wait_until(ready, timeout=READY_TIMEOUT_S, interval=0,
                       what=f"workload of {instance} on {host} ready")
        except BaseException:
            proc.kill()
            raise
        log.info("instance %s incarnation %d runs on %s", instance, incarnation, host)
        return guest

    def _read(self, guest: Guest) -> None:
        assert guest.proc.stdout is not None
        for raw in guest.proc.stdout:  # ends at EOF when the process dies
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            key = (guest.instance, guest.incarnation, str(ev.get("volume")), int(ev.get("seq", 0)))
            with self._lock:  # under the lock: `rebase` may move t0
                t = float(ev.get("t", 0.0)) - self.t0
                if ev["ev"] == "ready":
                    guest.ready.set()
                elif ev["ev"] == "invoke":
                    self._ops[key] = {"host": guest.host, "invoked": t,
                                      "checksum": ev["checksum"], "outcome": "info",
                                      "completed": None}
                elif key in self._ops:
                    self._ops[key].update(outcome=ev["ev"], completed=t)
                    if ev["ev"] == "ok":
                        guest.last_ok = t

    def stop(self, instance: str, host: str, undefine: bool = False) -> int:
        """Kill the instance's workload on `host`; `undefine` also forgets the guest there."""
        if undefine:
            with self._lock:
                self.defined.get(host, {}).pop(instance, None)
        killed = 0
        for guest in self.guests_on(host):
            if guest.instance == instance:
                guest.proc.kill()
                guest.proc.wait(timeout=5)
                self.tracer.emit(GuestStopped(host, instance, guest.incarnation,
                                              "destroyed" if undefine else "stopped"))
                killed += 1
        return killed

    def crash(self, instance: str) -> list[str]:
        """SIGKILL of the instance's workload process (its "qemu") wherever it runs now; only
        processes this lab started are touched. The guest stays defined on its host (a
        crashed domain keeps its definition) and its port stays plugged. The hosts it ran
        on; none when it runs nowhere."""
        with self._lock:
            victims = [g for g in self.guests if g.instance == instance and g.alive()]
        for guest in victims:
            guest.proc.send_signal(signal.SIGKILL)
        for guest in victims:
            guest.proc.wait(timeout=5)
            self.tracer.emit(GuestStopped(guest.host, instance, guest.incarnation, "killed"))
        return sorted({g.host for g in victims})

    def listed_on(self, host: str) -> list[tuple[str, bool]]:
        """(instance, running) of every guest defined on `host` or running there, as the
        hypervisor lists its domains: a guest whose process died is listed, not running."""
        with self._lock:
            alive = {g.instance for g in self.guests if g.host == host and g.alive()}
            defined = set(self.defined.get(host, {}))
        return [(name, name in alive) for name in sorted(alive | defined)]

    def kill_host(self, host: str) -> None:
        """The host lost power: its guests' processes die with it."""
        guests = self.guests_on(host)
        for guest in guests:
            guest.proc.kill()
        for guest in guests:
            guest.proc.wait(timeout=5)
            self.tracer.emit(GuestStopped(host, guest.instance, guest.incarnation, "host-off"))

    def resume_on_boot(self, host: str) -> None:
        """nova-compute's init_host: destroy guests evacuated elsewhere, resume the rest."""
        with self._lock:
            local = dict(self.defined.get(host, {}))
        evacuated = set(self.boot_hook(host, sorted(local))) if self.boot_hook else set()
        for name, uris in sorted(local.items()):
            if name in evacuated:
                self.stop(name, host, undefine=True)
                self.unplug(name, host)
                self.tracer.note(f"hv/{host}", "destroy-evacuated", instance=name)
            elif not any(g.instance == name for g in self.guests_on(host)):
                if self.plugged.get(name) is None:
                    self.plug(name, host)
                self.start(name, host, uris)

    def guests_on(self, host: str) -> list[Guest]:
        with self._lock:
            return [g for g in self.guests if g.host == host and g.alive()]

    def running(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i.name: [] for i in self.topology.instances}
        with self._lock:
            for g in self.guests:
                if g.alive():
                    out.setdefault(g.instance, []).append(g.host)
        return {k: sorted(v) for k, v in out.items()}

    def history(self) -> list[WriteOp]:
        with self._lock:
            items = sorted(self._ops.items(), key=lambda kv: (kv[1]["invoked"], kv[0]))
            return [WriteOp(instance=k[0], volume=k[2], incarnation=k[1], seq=k[3],
                            checksum=v["checksum"], invoked=v["invoked"],
                            completed=v["completed"], outcome=v["outcome"], host=v["host"])
                    for k, v in items]

    def freeze(self, drain_s: float = 2.0) -> None:
        """Stop every workload (SIGSTOP) and let the readers take what it already printed:
        a final read then sees a history that no volume is ahead of (Jepsen's final read
        after the clients stop). Stopped processes still count as running."""
        with self._lock:
            guests = [g for g in self.guests if g.alive()]
        for g in guests:
            g.proc.send_signal(signal.SIGSTOP)
        pipes = [g.proc.stdout.fileno() for g in guests if g.proc.stdout is not None]
        try:
            wait_until(lambda: not any(_unread(fd) for fd in pipes), timeout=drain_s,
                       interval=0.02, what="the stopped workloads' output read")
        except WaitTimeout as exc:  # a final read with what was taken; the checks say more
            log.warning("%s", exc)
        time.sleep(0.05)  # the readers parse the last lines they took

    def shutdown(self) -> None:
        with self._lock:
            guests = list(self.guests)
        for g in guests:
            if g.alive():
                g.proc.kill()
        for g in guests:
            try:
                g.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("workload pid %d did not exit", g.proc.pid)
        for reader in list(self._readers):  # the last lines a workload printed count too
            reader.join(timeout=2)


def _unread(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD); 0 once the reader has taken everything."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
    except OSError:
        return 0
