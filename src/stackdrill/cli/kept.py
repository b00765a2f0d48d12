"""`run --keep`: a lab left standing after a drill is a named lab like one from `up`, so
`status --all` lists it, `status --lab NAME` shows it (where its backend can reattach)
and `down --lab NAME` removes it through its backend's teardown.

The record is written under the lab's lock before the lab is brought up and the lock is
held for the whole run, so a lab standing after any ending (a failed check, an
infrastructure error, a crash of this process) is never unrecorded, and no other command
touches it meanwhile. A lab that lives in this process only (the simulator) cannot be
kept: nothing is recorded, and the run says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from stackdrill.backends import REGISTRY, backend_class
from stackdrill.cli import labstore
from stackdrill.cli.labstore import KeptRun, LabRecord
from stackdrill.drill import Drill
from stackdrill.errors import (
    BackendUnavailableError,
    LabStateError,
    StackdrillError,
    UnsupportedError,
)

# Raised before a lab is brought up: nothing stands, so nothing stays recorded.
NOTHING_STANDS = (BackendUnavailableError, UnsupportedError)


def kept_name(loaded: Drill, seed: int, lab_name: str | None) -> str:
    """The kept lab's name: --lab, else DRILL-SEED; either must be a valid lab name."""
    name = lab_name or f"{loaded.name}-{seed}"
    try:
        return labstore.check_name(name)
    except LabStateError as exc:
        if lab_name is None:
            raise LabStateError(f"{exc}; name the kept lab with --lab NAME") from None
        raise


@dataclass(frozen=True)
class Keeping:
    """What the run is told: the lab name to use (None: the runner's own). How to reach a
    kept lab is its backend's to say (`Backend.describe_kept`), not copied into the record;
    the lock is held by this process already: never take it again here."""

    name: str | None


@contextmanager
def keeping(keep: bool, loaded: Drill, drill: Path, backend: str, seed: int,
            lab_name: str | None, out: Console) -> Iterator[Keeping]:
    """Around a drill run: records a kept lab under its lock, held until the block ends."""
    if lab_name is not None:
        labstore.check_name(lab_name)
    if not keep or backend_class(backend).capabilities.in_process:
        if keep:
            out.print(f"--keep: a {backend} lab lives in this process only and ends with "
                      "it; `stackdrill up` keeps a lab between commands")
        yield Keeping(lab_name)
        return
    name = kept_name(loaded, seed, lab_name)
    with labstore.locked(name):
        if labstore.exists(name):
            raise LabStateError(f"lab {name!r} already exists (stackdrill down --lab {name}, "
                                "or name this one with --lab NAME)")
        source = str(drill.resolve())  # its topology is the drill's (maybe inline)
        record = LabRecord(name=name, backend=backend, topology=source, seed=seed,
                           kept_from=KeptRun(drill=source, drill_name=loaded.name, seed=seed))
        labstore.save(record)
        try:
            yield Keeping(name)
        except NOTHING_STANDS:
            labstore.remove(name)
            raise
        finally:
            if labstore.exists(name):
                out.print(escape(f"lab {name} kept: `stackdrill status --lab {name}` shows "
                                 f"it, `stackdrill down --lab {name}` removes it"))


def kept_elsewhere() -> list[tuple[str, str]]:
    """(backend, lab name) of every lab kept on purpose on this machine, whichever lab
    store kept it: a store is per user (or STACKDRILL_HOME), kept resources machine-wide."""
    found = []
    for backend in sorted(REGISTRY):
        try:
            found += [(backend, name) for name in backend_class(backend).kept_labs()]
        except (ImportError, OSError, StackdrillError):
            continue  # a backend that cannot run here has kept nothing here
    return found
