"""Named labs whose state survives between CLI commands (Molecule-style persisted state).

The simulator keeps no process alive between commands: a sim lab is the schedule
steps given to it (the same `Step` values a drill's schedule holds, each at the lab
time it was given) and the lab time it has reached; reopening it replays them
deterministically. Backends with real resources reattach instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from stackdrill.drill.model import Step
from stackdrill.errors import LabStateError
from stackdrill.faults import Fault

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class LabRecord(BaseModel):
    """A named lab: how to bring it up again and every step given to it so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    backend: str
    topology: str  # absolute path of the topology file
    seed: int
    now: float = 0.0  # the lab time reached: a `wait` moves only this
    steps: tuple[Step, ...] = ()

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
    """Where lab records live: $STACKDRILL_HOME, else ./.stackdrill."""
    return Path(os.environ.get("STACKDRILL_HOME", ".stackdrill"))


def _path(name: str) -> Path:
    if not LAB_NAME.match(name):
        raise LabStateError(f"invalid lab name {name!r}: lower-case letters, digits and '-'")
    return home() / "labs" / f"{name}.json"


def save(record: LabRecord) -> None:
    path = _path(record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.model_dump_json(indent=2))
    tmp.replace(path)


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
    _path(name).unlink(missing_ok=True)


def names() -> list[str]:
    folder = home() / "labs"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []
