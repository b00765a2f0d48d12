"""Commands inside a guest through qemu-guest-agent (via libvirt), never through IP.

The lab bridges carry no host address, so the host reaches a guest only through the
virtio-serial channel libvirt gives the agent. `guest-exec` starts a process, and
`guest-exec-status` is polled (bounded by a timeout) until it has exited. This works on every
hypervisor URI a lab spans, unlike a socket the host would have to open itself.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]

from stackdrill.backends.libvirt.readiness import ProgressDeadline
from stackdrill.errors import LabNotReadyError, StackdrillError


class GuestCommandError(StackdrillError):
    """A guest command could not be run, or did not finish in time."""

    def __init__(self, message: str, transient: bool = False,
                 agent_unavailable: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # the agent was slow or busy, the guest still runs
        # libvirt could not reach the agent at all (not connected, no reply): whether that
        # is the drill's doing (a host cut off or hung) or the lab's is for the lab to say
        self.agent_unavailable = agent_unavailable


# libvirt's answers when the agent is slow to reply or another call holds the domain's
# agent job: under TCG load a guest may be starved for seconds, which is not an error yet.
_TRANSIENT = {libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_OPERATION_TIMEOUT}


@dataclass(frozen=True)
class ShellResult:
    command: str
    rc: int
    stdout: str
    stderr: str

    def check(self) -> ShellResult:
        if self.rc != 0:
            raise GuestCommandError(f"{self.command!r} exited {self.rc}: {self.stderr.strip()}")
        return self


class GuestAgent:
    """Runs shell commands in one domain's guest."""

    def __init__(self, domain: libvirt.virDomain, poll: float = 0.1) -> None:
        self.domain = domain
        self.poll = poll

    def _call(self, command: str, arguments: dict[str, Any] | None, timeout: int) -> Any:
        payload: dict[str, Any] = {"execute": command}
        if arguments is not None:
            payload["arguments"] = arguments
        try:
            reply = libvirt_qemu.qemuAgentCommand(self.domain, json.dumps(payload), timeout, 0)
        except libvirt.libvirtError as exc:
            unavailable = exc.get_error_code() in _TRANSIENT
            raise GuestCommandError(f"{self.domain.name()}: agent {command}: {exc}",
                                    unavailable and self._active(), unavailable) from exc
        return json.loads(reply)["return"]

    def _active(self) -> bool:
        try:
            return bool(self.domain.isActive())
        except libvirt.libvirtError:
            return False

    def ping(self, timeout: int = 2) -> bool:
        try:
            self._call("guest-ping", None, timeout)
        except GuestCommandError:
            return False
        return True

    def wait_ready(self, deadline: ProgressDeadline) -> float:
        """Poll guest-ping until the agent answers, for as long as `deadline` sees the guest
        progress; returns the seconds it took. LabNotReadyError when it gives up or the
        domain stopped running meanwhile."""
        while True:
            if self.ping():
                return deadline.elapsed()
            if not self._active():
                raise LabNotReadyError(f"{self.domain.name()}: stopped running while booting "
                                       f"(after {deadline.elapsed():.0f} s)")
            deadline.check()
            time.sleep(0.5)

    def _exec(self, args: dict[str, Any], reconnect_s: float) -> int:
        """guest-exec, waiting up to `reconnect_s` for an agent that is not connected (it
        restarts, or a starved guest has not reopened its channel): the command cannot
        have reached it then, so sending it again runs it once."""
        deadline = time.monotonic() + reconnect_s
        while True:
            try:
                return int(self._call("guest-exec", args, 10)["pid"])
            except GuestCommandError as exc:
                absent = exc.transient and "not connected" in str(exc)
                if not absent or time.monotonic() >= deadline:
                    raise
            time.sleep(0.5)

    def run(self, command: str, timeout: float = 60.0, stdin: str | None = None,
            reconnect_s: float = 0.0) -> ShellResult:
        args: dict[str, Any] = {"path": "/bin/sh", "arg": ["-c", command], "capture-output": True}
        if stdin is not None:
            args["input-data"] = base64.b64encode(stdin.encode()).decode()
        pid = self._exec(args, min(reconnect_s, timeout))
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self._call("guest-exec-status", {"pid": pid}, 10)
            except GuestCommandError as exc:
                if not exc.transient or time.monotonic() > deadline:
                    raise
                status = {}  # a slow poll: the process still runs, ask again
            if status.get("exited"):
                return ShellResult(
                    command=command,
                    rc=int(status.get("exitcode", -int(status.get("signal", 1)))),
                    stdout=_decode(status.get("out-data")),
                    stderr=_decode(status.get("err-data")),
                )
            if time.monotonic() > deadline:
                self.run(f"kill -9 {pid} 2>/dev/null", timeout=10)
                raise GuestCommandError(
                    f"{self.domain.name()}: {command!r} still running after {timeout:.0f} s"
                )
            time.sleep(self.poll)


def _decode(data: str | None) -> str:
    return base64.b64decode(data).decode(errors="replace") if data else ""
