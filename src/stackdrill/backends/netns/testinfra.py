"""A testinfra backend for lab hosts: `netns://NAMESPACE`.

testinfra has no network-namespace backend. This one runs every command as
`ip netns exec NAME /bin/sh -c CMD`; `ip netns exec` (unlike `nsenter --net`) also
remounts /sys for the namespace, so `host.interface(...)` sees the lab's interfaces.
Following testinfra's own registry, the class is named by its dotted path in
`testinfra.backend.BACKENDS`; `register()` adds it (the pytest plugin calls it).
"""

from __future__ import annotations

import subprocess
from typing import Any

from testinfra.backend import BACKENDS, base

from stackdrill.backends.netns.names import is_stackdrill_ns

SCHEME = "netns"
CLASS_PATH = "stackdrill.backends.netns.testinfra.NetnsTestinfraBackend"
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


def register() -> None:
    """Make `netns://NAME` host specs known to testinfra (idempotent)."""
    BACKENDS[SCHEME] = CLASS_PATH


def host(namespace: str) -> Any:
    """A testinfra Host for a lab namespace: `host("sd-0001-h-cmp1").interface(...)`."""
    import testinfra

    register()
    return testinfra.get_host(f"{SCHEME}://{namespace}")
