"""Where a lab keeper says what it is doing: a directory beside the lab's record holding
its state (starting, ready, failed), its key, its log and the engine's inventory, and a
machine-wide entry so `stackdrill list labs` finds keepers of every checkout."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from stackdrill.backends import lifetime
from stackdrill.cli import labstore


class KeeperState(BaseModel):
    """What the keeper last said about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: Literal["starting", "ready", "failed"]
    lab: str
    backend: str
    home: str  # the lab store it belongs to (absolute)
    owner: str  # lifetime.owner_token() of the keeper: tells it from a reused pid
    started_at: float  # wall-clock seconds since the epoch
    address: str | None = None  # its socket, once ready
    error: str | None = None  # why bring-up failed
    exit_code: int | None = None  # the failure's exit code (stackdrill.errors)

    @property
    def pid(self) -> int:
        return int(self.owner.split()[0])

    def alive(self) -> bool:
        return not lifetime.owner_gone(self.owner)


def _write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_state(path: Path) -> KeeperState | None:
    try:
        return KeeperState.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


class KeeperPlace:
    """The keeper's directory for one lab: `<lab store>/labs/NAME.keeper/`."""

    def __init__(self, name: str, home: Path | None = None) -> None:
        self.name = labstore.check_name(name)
        self.home = (home or labstore.home()).resolve()
        self.dir = self.home / "labs" / f"{name}.keeper"

    @property
    def log(self) -> Path:
        return self.dir / "keeper.log"

    @property
    def workdir(self) -> Path:
        return self.dir / "work"

    def create(self) -> bytes:
        """A fresh directory and a new key (readable by this user only)."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.workdir.mkdir(mode=0o700, exist_ok=True)
        (self.dir / "state.json").unlink(missing_ok=True)  # a dead keeper's, if any
        key = secrets.token_bytes(32)
        _write_atomically(self.dir / "authkey", key.hex())
        return key

    def key(self) -> bytes:
        return bytes.fromhex((self.dir / "authkey").read_text().strip())

    def state(self) -> KeeperState | None:
        return _read_state(self.dir / "state.json")

    def say(self, state: KeeperState) -> None:
        _write_atomically(self.dir / "state.json", state.model_dump_json())
        if state.state != "failed":
            registry = _registry()
            if registry is not None:
                _write_atomically(registry / f"{state.pid}.json", state.model_dump_json())

    def forget(self) -> None:
        """Remove the directory (after the keeper is gone) and its machine-wide entry."""
        state = self.state()
        registry = _registry()
        if state is not None and registry is not None:
            (registry / f"{state.pid}.json").unlink(missing_ok=True)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)


def _registry() -> Path | None:
    """Machine-wide for this user: one entry per keeper, whichever directory its lab store
    is in. None when the directory is not this user's own real directory (someone else
    made it first, or it is a link): nothing is written through it then."""
    folder = Path(tempfile.gettempdir()) / f"stackdrill-keepers-{os.geteuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        found = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        return None
    return folder


def running_keepers() -> list[KeeperState]:
    """Every keeper of this user on this machine that still runs; entries of dead ones are
    removed."""
    registry = _registry()
    found: list[KeeperState] = []
    for entry in sorted(registry.glob("*.json")) if registry is not None else []:
        state = _read_state(entry)
        if state is None or not state.alive():
            entry.unlink(missing_ok=True)
            continue
        found.append(state)
    return found


def age(state: KeeperState) -> float:
    return max(0.0, time.time() - state.started_at)
