"""The operator commands a netns lab can run: the overlay probe and the iperf3 throughput
probe, both for real inside the lab's namespaces. There is no DRBD, LVM or cluster here
(volumes are plain files served over NBD): those commands are recorded as failed, so an
expectation on them fails, never passes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from stackdrill.api import CommandResult
from stackdrill.api.commands import Command, ProbeCommand, ThroughputCommand
from stackdrill.backends.netns import nsops
from stackdrill.overlay.probes import probe
from stackdrill.overlay.throughput import Endpoints, measure

if TYPE_CHECKING:
    from stackdrill.backends.netns.lab import NetnsLab

_RUN_ERRORS = (OSError, RuntimeError, subprocess.SubprocessError)


def in_namespace(ns: str, argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """rc and stdout+stderr (ping's local errors go to stderr) of argv run in `ns`."""
    result = nsops.run(ns, argv, timeout=timeout, check=False)
    return result.returncode, result.stdout + result.stderr


def run_command(lab: NetnsLab, command: Command, now: Callable[[], float]) -> CommandResult:
    try:
        if isinstance(command, ProbeCommand):
            runner = partial(in_namespace, lab.names.instance_ns(command.src))
            return probe(runner, lab.names.instance_if(), lab.topology, command.src,
                         command.dst, now)
        if isinstance(command, ThroughputCommand):
            return _throughput(lab, command, now)
    except _RUN_ERRORS as exc:
        return CommandResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return CommandResult(ok=False, detail=(
        f"UnsupportedError: the netns backend has no {command.tool} (volumes are plain "
        "files served over NBD; no DRBD, LVM or cluster tools)"))


def _throughput(lab: NetnsLab, command: ThroughputCommand,
                now: Callable[[], float]) -> CommandResult:
    ends = []
    for instance in (command.src, command.dst):
        host = lab.instances.plugged.get(instance)
        if host is None:
            return CommandResult(ok=False, detail=f"{instance} runs nowhere: no throughput "
                                                  "to measure")
        ends.append(Endpoints(partial(in_namespace, lab.names.instance_ns(instance)),
                              partial(in_namespace, lab.names.host_ns(host)), host))
    return measure(lab.topology, command.src, command.dst, (ends[0], ends[1]),
                   command.seconds, now)
