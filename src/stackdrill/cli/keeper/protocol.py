"""What a command and a lab keeper say to each other: typed values, pickled over an
authenticated connection (`multiprocessing.connection`: the HMAC challenge with the lab's
key runs before anything is unpickled, and the key is readable by its owner only)."""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.errors import StackdrillError
from stackdrill.recovery import RecoveryEvent

# the lab-core operations a command may ask for (`stackdrill.cli.labcore.LabCore`)
METHODS = frozenset({"now", "observe", "evidence", "last_command", "idle", "dry_run", "apply"})


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True)
class Event:
    """A recovery event, sent while the step that caused it still runs."""

    event: RecoveryEvent


@dataclass(frozen=True)
class Value:
    value: object


@dataclass(frozen=True)
class Failure:
    """The operation raised: its message and exit code (stackdrill.errors)."""

    message: str
    exit_code: int


class KeeperRefused(StackdrillError):
    """An error the keeper reported for a command: the same message and exit code as if
    the command had run the lab itself."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
