"""A testinfra backend that runs commands through qemu-guest-agent, so scenarios check guests
the way an operator would (`host.run("drbdadm status")`, `host.interface("repl")`), without IP.

Follows testinfra's own backend pattern: a small class with `run`, wrapped in a
`testinfra.host.Host` as `testinfra.get_host` does; testinfra has no API to add a connection
type, so its private `BACKENDS` table is left alone. The hypervisor URI comes from the
constructor or STACKDRILL_LIBVIRT_URI.
"""

from __future__ import annotations

import os
from typing import Any

import libvirt
import testinfra.host
from testinfra.backend.base import BaseBackend, CommandResult

from stackdrill.backends.libvirt.agent import GuestAgent

NAME = "libvirt-agent"


class GuestAgentBackend(BaseBackend):  # type: ignore[misc]
    NAME = NAME

    def __init__(self, hostname: str, *args: Any, uri: str | None = None,
                 timeout: float = 120.0, **kwargs: Any) -> None:
        self.uri = uri or os.environ.get("STACKDRILL_LIBVIRT_URI", "qemu:///system")
        self.timeout = float(timeout)
        self._conn: libvirt.virConnect | None = None
        super().__init__(hostname, *args, **kwargs)

    def _agent(self) -> GuestAgent:
        if self._conn is None:
            self._conn = libvirt.open(self.uri)
        return GuestAgent(self._conn.lookupByName(self.hostname))

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        out = self._agent().run(cmd, timeout=self.timeout)
        return self.result(out.rc, self.encode(cmd), out.stdout, out.stderr)


def guest_host(domain: str, uri: str | None = None) -> testinfra.host.Host:
    """A testinfra Host for one lab domain (e.g. `lab.nodes["alice"].domain`)."""
    return testinfra.host.Host(GuestAgentBackend(domain, uri=uri))
