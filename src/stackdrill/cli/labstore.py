"""Named labs whose state survives between CLI commands (Molecule-style persisted state).

The simulator keeps no process alive between commands: a sim lab is the schedule
steps given to it (the same `Step` values a drill's schedule holds, each at the lab
time it was given) and the lab time it has reached; reopening it replays them
deterministically. Backends with real resources reattach instead.

Every command on a lab holds its lock from reading the record to writing it back
(`locked`), and a record is replaced atomically (a temporary file, then a rename), so
concurrent commands queue and a crash never leaves half a record.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackdrill.cli import lablock
from stackdrill.drill.model import Step
from stackdrill.errors import LabStateError
from stackdrill.faults import Fault

LAB_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")  # always fullmatch: `$` accepts "name\n"


class KeptRun(BaseModel):
    """Where a lab left standing by `stackdrill run --keep` came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    drill: str  # absolute path of the drill file
    drill_name: str
    seed: int


class LabRecord(BaseModel):
    """A named lab: how to bring it up again and every step given to it so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    backend: str
    topology: str  # absolute path of the topology file
    seed: int
    now: float = Field(default=0.0, ge=0, allow_inf_nan=False)  # a `wait` moves only this
    steps: tuple[Step, ...] = ()
    kept_from: KeptRun | None = None  # set when `run --keep` left the lab standing
    created_at: float | None = None  # wall-clock seconds since the epoch (`list labs`)

    def with_step(self, step: Step, now: float) -> LabRecord:
        return self.model_copy(update={"steps": (*self.steps, step), "now": now})

    def at(self, now: float) -> LabRecord:
        return self.model_copy(update={"now": now})

    def faults_in_force(self) -> dict[str, Fault]:
        """Fault id -> fault, for every fault injected and not healed yet."""
        active: dict[str, Fault] = {}
        for step in self.steps:
            if step.inject is not None and step.id is not None:
                active[step.id] = step.inject
            elif step.heal is not None:
                active.pop(step.heal, None)
        return active

    def next_fault_id(self) -> str:
        return f"f{sum(step.inject is not None for step in self.steps) + 1}"


def home() -> Path:
    """Where lab records live: $STACKDRILL_HOME, else the user's state directory
    ($XDG_STATE_HOME/stackdrill, by default ~/.local/state/stackdrill), so a lab brought
    up in one directory is found from any other (the XDG base directory rule is two
    lines: no library for it). Backends keep their machine-wide state elsewhere
    (/var/lib/stackdrill for libvirt and vagrant)."""
    explicit = os.environ.get("STACKDRILL_HOME")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "stackdrill"


LEGACY_HOME = Path(".stackdrill")  # the store's default before it moved to the state dir


def legacy_labs() -> list[str]:
    """Labs recorded in ./.stackdrill, which this version no longer reads by default."""
    folder = LEGACY_HOME / "labs"
    if "STACKDRILL_HOME" in os.environ or not folder.is_dir() \
            or folder.resolve() == (home() / "labs").resolve():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if LAB_NAME.fullmatch(p.stem))


def check_name(name: str) -> str:
    """The name itself when it is a valid lab name, else a LabStateError (exit 2)."""
    if not LAB_NAME.fullmatch(name):
        raise LabStateError(f"invalid lab name {name[:40]!r}: a lower-case letter, then up "
                            "to 30 lower-case letters, digits and '-'")
    return name


def _path(name: str) -> Path:
    return home() / "labs" / f"{check_name(name)}.json"


def _lock_path(name: str) -> Path:
    return home() / "labs" / f"{check_name(name)}.lock"


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the lab's lock for a whole command: read, act, write back, nobody in between."""
    with lablock.hold(_lock_path(name), name):
        yield


def save(record: LabRecord) -> None:
    """Replace the record atomically: a crash or a full disk leaves the old one whole."""
    path = _path(record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{record.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(record.model_dump_json(indent=2))
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(name: str) -> LabRecord:
    """The lab's record; a clear error for a missing one and for one this version of
    stackdrill cannot read (a record is scratch state: `down` removes it)."""
    path = _path(name)
    if not path.exists():
        raise LabStateError(f"no lab named {name!r} (start one with `stackdrill up TOPOLOGY "
                            f"--lab {name}`)")
    try:
        return LabRecord.model_validate(json.loads(path.read_text()))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise LabStateError(
            f"lab {name!r}: cannot read its state {path} (written by another version of "
            f"stackdrill?): {where}: {first['msg']}; `stackdrill down --lab {name}` "
            "removes it") from None
    except (ValueError, OSError) as exc:
        raise LabStateError(f"lab {name!r}: unreadable state {path}: {exc}; "
                            f"`stackdrill down --lab {name}` removes it") from None


def backend_of(name: str) -> str | None:
    """The backend a lab was brought up on, even from a record `load` refuses, so `down`
    can still tear down what it left; None when the file says nothing usable."""
    try:
        data = json.loads(_path(name).read_text())
    except (ValueError, OSError):
        return None
    backend = data.get("backend") if isinstance(data, dict) else None
    return backend if isinstance(backend, str) else None


def exists(name: str) -> bool:
    return _path(name).exists()


def remove(name: str) -> None:
    """Forget the lab (under its lock: the lock file goes too, and a command waiting on
    it starts over on a fresh one and finds no lab)."""
    _path(name).unlink(missing_ok=True)
    _lock_path(name).unlink(missing_ok=True)


def names() -> list[str]:
    folder = home() / "labs"
    if not folder.exists():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if LAB_NAME.fullmatch(p.stem))
