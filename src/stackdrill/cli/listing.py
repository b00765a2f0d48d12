"""`stackdrill list labs`: every lab on this machine, from this lab store's records, the
lab keepers running anywhere on the machine (other checkouts' too) and the labs kept on
purpose by `run --keep` (containerlab's `inspect --all`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import click
from rich.markup import escape
from rich.table import Table

from stackdrill.cli import labstore
from stackdrill.cli.keeper.place import KeeperPlace, KeeperState, running_keepers
from stackdrill.cli.kept import kept_elsewhere
from stackdrill.cli.render import console
from stackdrill.errors import LabStateError


@dataclass(frozen=True)
class LabRow:
    lab: str
    backend: str
    age_s: float | None  # None: not known (a lab kept by another checkout)
    held_by: str  # who holds it between commands
    store: str | None  # the lab store (directory) whose commands drive it
    faults_in_force: tuple[str, ...] | None = None  # None: recorded in another store


def _held_by(record: labstore.LabRecord, keeper: KeeperState | None) -> str:
    if record.kept_from is not None:
        kept = record.kept_from
        return f"kept by `run --keep`: run {kept.drill_name} (seed {kept.seed})"
    if keeper is not None:
        return f"keeper pid {keeper.pid}" if keeper.alive() else "keeper gone (down removes it)"
    return "replayed by each command (sim)" if record.backend == "sim" else "no keeper"


def _recorded() -> list[LabRow]:
    rows = []
    now = time.time()
    home = str(labstore.home().resolve())
    for name in labstore.names():
        try:
            record = labstore.load(name)
        except LabStateError as exc:
            rows.append(LabRow(name, "?", None, f"unreadable: {exc}"[:120], home))
            continue
        keeper = KeeperPlace(name).state()
        started = keeper.started_at if keeper is not None else record.created_at
        rows.append(LabRow(name, record.backend, None if started is None else now - started,
                           _held_by(record, keeper), home,
                           tuple(record.faults_in_force())))
    return rows


def lab_rows() -> list[LabRow]:
    """One row per lab on this machine."""
    rows = _recorded()
    seen = {(r.store, r.lab) for r in rows}
    now = time.time()
    for keeper in running_keepers():
        if (keeper.home, keeper.lab) not in seen:
            rows.append(LabRow(keeper.lab, keeper.backend, now - keeper.started_at,
                               f"keeper pid {keeper.pid}", keeper.home))
            seen.add((keeper.home, keeper.lab))
    names = {r.lab for r in rows}
    for backend, name in kept_elsewhere():
        if name not in names:
            rows.append(LabRow(name, backend, None, "kept by run --keep (another checkout)",
                               None))
    return rows


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@click.group("list")
def list_cmd() -> None:
    """List what this machine has."""


def print_labs(rows: list[LabRow]) -> None:
    """The labs as a table (`list labs`, and `status --all`)."""
    table = Table(title="labs", title_justify="left")
    for col in ("lab", "backend", "age", "held by", "lab store", "faults in force"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.lab, r.backend, _age(r.age_s), escape(r.held_by),
                      escape(r.store or "—"),
                      "?" if r.faults_in_force is None else ", ".join(r.faults_in_force) or "—")
    console().print(table)


@list_cmd.command("labs", epilog="Examples:\n  stackdrill list labs\n  stackdrill list labs --json")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_labs(as_json: bool) -> None:
    """Every lab on this machine: its backend, its age, what holds it between commands,
    the lab store whose commands drive it, and the faults in force."""
    rows = lab_rows()
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    print_labs(rows)
