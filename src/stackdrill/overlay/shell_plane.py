"""A data plane programmed with iproute2 commands run on each host through a shell.

For backends whose hosts are reachable only by running a command there (real guests
through the qemu guest agent, which have no pyroute2): `ip link` creates the VTEP,
`bridge fdb` changes the FDB, `bridge -batch` programs a fresh device in one command, and
`bridge fdb show` is parsed back. Every operation is one `run` call, since each round trip
to a guest is the expensive part. Commands run with LC_ALL=C so errors parse the same.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from typing import Protocol

from stackdrill.overlay.plane import (
    Entry,
    FdbPlane,
    PlaneError,
    Tolerated,
    Verb,
    VtepNaming,
    VtepSpec,
    batch,
    fdb_line,
)

# what `bridge fdb` prints for a present entry (EEXIST) and an absent one (ENOENT)
STDERR: dict[Tolerated, str] = {"exists": "File exists", "missing": "No such file or directory"}
HEREDOC = "STACKDRILL_FDB"


class ShellResult(Protocol):
    """What a runner returns (the libvirt guest agent's ShellResult fits)."""

    @property
    def rc(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


Runner = Callable[[str, str], ShellResult]  # (host, shell command) -> result


class ShellPlane(FdbPlane):
    """VTEPs and FDBs through `run(host, command)`; device names from `naming`."""

    def __init__(self, run: Runner, naming: VtepNaming) -> None:
        super().__init__(naming)
        self.run = run

    def _run(self, host: str, command: str, tolerate: str | None = None) -> str:
        """Run `command` on `host`; a failure whose stderr contains `tolerate` is success."""
        result = self.run(host, f"export LC_ALL=C\n{command}")
        if result.rc != 0 and not (tolerate and tolerate in result.stderr):
            shown = "; ".join(command.splitlines())
            raise PlaneError(f"{host}: {shown[:300]!r} exited {result.rc}: "
                             f"{(result.stderr or result.stdout).strip()}")
        return result.stdout

    def create(self, host: str, spec: VtepSpec) -> None:
        dev = self.devices(host, spec.overlay)
        vx, br, q = shlex.quote(dev.vxlan), shlex.quote(dev.bridge), shlex.quote
        self._run(host, "\n".join([
            "set -e",
            f"ip link add name {vx} mtu {spec.mtu} type vxlan id {spec.vni}"
            f" dstport {spec.port} local {q(spec.local)} dev {q(dev.underlay)} nolearning",
            f"ip link add name {br} address {q(dev.bridge_mac)} mtu {spec.mtu}"
            " type bridge stp_state 0 forward_delay 0",
            f"ip link set dev {vx} master {br} up",
            f"ip link set dev {br} up",
            f"ip addr add {q(spec.address)}/{spec.prefixlen} dev {br}",
        ]))

    def dump(self, host: str, overlay: str) -> set[Entry]:
        vx = self.devices(host, overlay).vxlan
        return parse_fdb(self._run(host, f"bridge fdb show dev {shlex.quote(vx)}"))

    def change(self, host: str, overlay: str, verb: Verb, mac: str, dst: str,
               ok_if: Tolerated | None = None) -> None:
        line = fdb_line(verb, mac, self.devices(host, overlay).vxlan, dst)
        self._run(host, "bridge " + " ".join(shlex.quote(w) for w in line.split()),
                  STDERR[ok_if] if ok_if else None)

    def bulk(self, host: str, overlay: str, entries: Iterable[Entry]) -> None:
        """One `bridge -batch` fed by a here-document (a runner need not pass stdin)."""
        lines = batch(self.devices(host, overlay).vxlan, entries)
        if lines:
            self._run(host, f"bridge -batch - <<'{HEREDOC}'\n{lines}{HEREDOC}")


def parse_fdb(text: str) -> set[Entry]:
    """(mac, dst) of every `bridge fdb show` line with a dst: the VXLAN device's remotes;
    the lines without one are the bridge's own (master) entries."""
    out: set[Entry] = set()
    for line in text.splitlines():
        words = line.split()
        if "dst" in words[1:-1]:
            out.add((words[0], words[words.index("dst") + 1]))
    return out
