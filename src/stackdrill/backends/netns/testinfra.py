"""A testinfra backend for lab hosts: `netns://NAMESPACE`.

testinfra has no network-namespace backend. This one runs every command as
`ip netns exec NAME /bin/sh -c CMD`; `ip netns exec` (unlike `nsenter --net`) also
remounts /sys for the namespace, so `host.interface(...)` sees the lab's interfaces.

testinfra has no API to add a connection type (its `BACKENDS` table is its own), so the
backend is not registered there: `host(NAMESPACE)` builds the backend and hands it to
`testinfra.host.Host`, the public class every testinfra host is, exactly as
`testinfra.get_host` does with the backends it knows. The pytest id stays
`netns://NAMESPACE`.
"""

from __future__ import annotations

import subprocess
from typing import Any

import testinfra.host
from testinfra.backend import base

from stackdrill.backends.netns.names import is_stackdrill_ns

SCHEME = "netns"
TIMEOUT_S = 60.0


class NetnsTestinfraBackend(base.BaseBackend):  # type: ignore[misc]
    """Run commands inside one of stackdrill's lab namespaces (and nowhere else)."""

    NAME = SCHEME

    def __init__(self, hostname: str, *args: Any, **kwargs: Any) -> None:
        if not is_stackdrill_ns(hostname):
            raise ValueError(f"netns://{hostname}: not a stackdrill lab namespace "
                             "(expected sd-XXXX-...)")
        super().__init__(hostname, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        argv = ["ip", "netns", "exec", self.hostname, "/bin/sh", "-c", cmd]
        proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S, check=False)
        return self.result(proc.returncode, self.encode(cmd), proc.stdout, proc.stderr)


def host(namespace: str) -> testinfra.host.Host:
    """A testinfra Host for a lab namespace: `host("sd-0001-h-cmp1").interface(...)`."""
    backend = NetnsTestinfraBackend(namespace)
    it = testinfra.host.Host(backend)
    backend.set_host(it)  # as testinfra.get_host does: modules may ask the backend's host
    return it
