"""Errors as types: the CLI turns each into one line and an exit code, never a traceback.

Exit codes, on every command: 0 every expectation held (or the command did what it
said), 1 a check failed (the recovery under test did not do its job), 2 bad input or
usage (a file, an argument, a backend that cannot realise the drill), 3 an
infrastructure error (the lab could not be brought up, driven or observed: no verdict
about the recovery), 4 an output could not be written (the verdict was printed first),
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field


class StackdrillError(Exception):
    """Base of every error stackdrill reports to a user."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file: where (path inside the file) and what."""

    path: str
    message: str

    def render(self, file: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{file}: {where}{self.message}"


@dataclass
class InputError(StackdrillError):
    """A topology or drill file is malformed; names the file, the path inside it and the problem."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    exit_code = 2

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render(self.file) for p in self.problems)


class TopologyError(InputError):
    """A topology file is malformed."""


class DrillError(InputError):
    """A drill file is malformed."""


class UnsupportedError(StackdrillError):
    """A drill asks a backend for something it declared it cannot do."""

    exit_code = 2


class BackendUnavailableError(StackdrillError):
    """A backend cannot run on this machine (no root, no libvirt, ...)."""

    exit_code = 2


class LabStateError(StackdrillError):
    """A named lab is missing, already exists, or its saved state is unusable."""

    exit_code = 2


class InfrastructureError(StackdrillError):
    """The lab could not be brought up, driven or observed, so the run says nothing about
    the recovery under test: never a FAIL verdict, its own exit code and report state."""

    exit_code = 3


class LabNotReadyError(InfrastructureError):
    """A lab never became ready (a guest that did not boot, an agent that never answered)
    or stopped being observable; the message says which part and what it was waiting for."""

    def __init__(self, message: str) -> None:
        super().__init__(f"lab not ready: {message}")


class OutputError(StackdrillError):
    """A report or other output file could not be written (disk full, permission, a
    symlink at the target); the verdict has already been printed."""

    exit_code = 4


CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for `cmd | head`


def until_stdout_closes(command: Callable[[], int | None]) -> int:
    """Run `command`; when its reader went away (`stackdrill … | head`), stop quietly with
    the shell's code for SIGPIPE instead of a BrokenPipeError traceback. stdout is pointed
    at /dev/null first, so the interpreter's own flush at exit does not raise again."""
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return CLOSED_PIPE_EXIT
    return code or 0
