"""Errors as types: the CLI turns each into one line and an exit code, never a traceback."""

from __future__ import annotations

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
