"""Named labs whose state survives between CLI commands (Molecule-style persisted state).

The simulator keeps no process alive between commands: a sim lab is the list of
commands given to it, each with the lab time it happened at, and reopening it
replays them deterministically. Backends with real resources reattach instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackdrill.errors import LabStateError

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class LabAction(BaseModel):
    """One command given to a lab, at lab time `at`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: float
    op: str  # inject | heal | advance | recover | run
    id: str | None = None
    fault: dict[str, Any] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class LabRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    backend: str
    topology: str  # absolute path of the topology file
    seed: int
    now: float = 0.0
    actions: tuple[LabAction, ...] = ()

    def with_action(self, action: LabAction, now: float) -> LabRecord:
        return self.model_copy(update={"actions": (*self.actions, action), "now": now})

    def faults_in_force(self) -> dict[str, dict[str, Any]]:
        active: dict[str, dict[str, Any]] = {}
        for action in self.actions:
            if action.op == "inject" and action.id and action.fault:
                active[action.id] = action.fault
            elif action.op == "heal" and action.id:
                active.pop(action.id, None)
        return active


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
    path = _path(name)
    if not path.exists():
        raise LabStateError(f"no lab named {name!r} (start one with `stackdrill up TOPOLOGY "
                            f"--lab {name}`)")
    try:
        return LabRecord.model_validate(json.loads(path.read_text()))
    except (ValueError, OSError) as exc:
        raise LabStateError(f"lab {name!r}: unreadable state {path}: {exc}") from None


def exists(name: str) -> bool:
    return _path(name).exists()


def remove(name: str) -> None:
    _path(name).unlink(missing_ok=True)


def names() -> list[str]:
    folder = home() / "labs"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []
