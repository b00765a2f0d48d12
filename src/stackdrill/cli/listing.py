"""`stackdrill list drills|labs|faults|backends`, each as a table or (`--json`) as one JSON
array of the same typed rows.

`list labs`: every lab on this machine, from this lab store's records, the lab keepers
running anywhere on the machine (other stores' too) and the labs kept on purpose by
`run --keep` (containerlab's `inspect --all`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from stackdrill.cli import catalog, labstore
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


@click.group("list", epilog="""\b
Examples:
  stackdrill list drills
  stackdrill list faults --json
  stackdrill list backends
  stackdrill list labs""")
def list_cmd() -> None:
    """List the shipped drills, the labs on this machine, the fault kinds or the backends."""


JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="One JSON array of the same rows, for scripts.")


def emit(rows: Sequence[Any], as_json: bool, table: Callable[[Sequence[Any]], Table]) -> None:
    """The rows as one JSON array (dataclasses' fields) or as a table for a person."""
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        console().print(table(rows))


def _joined(values: Sequence[str]) -> str:
    return escape(", ".join(values)) or "—"


def drills_table(rows: Sequence[catalog.DrillRow]) -> Table:
    table = Table(title="shipped drills (stackdrill run NAME)", title_justify="left")
    for col in ("drill", "topology", "faults", "runs on", "what it rehearses"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.name, r.topology, _joined(r.faults), _joined(r.runs_on),
                      escape(r.description))
    return table


def faults_table(rows: Sequence[catalog.FaultRow]) -> Table:
    table = Table(title="fault kinds (stackdrill inject KIND key=value ...)",
                  title_justify="left")
    for col in ("fault", "parameters (? optional)", "heal", "backends", "what it does"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.kind, _joined(r.parameters), "yes" if r.healable else "no",
                      _joined(r.backends), escape(r.description))
    return table


def backends_table(rows: Sequence[catalog.BackendRow]) -> Table:
    table = Table(title="backends (--backend NAME)", title_justify="left")
    for col in ("backend", "here", "needs", "faults", "features"):
        table.add_column(col, overflow="fold")
    for r in rows:
        here = ("[green]available[/green]" if r.available else
                f"[red]{escape(r.why_not or '')}[/red]")
        table.add_row(r.name, here, escape(r.needs) or "—", str(len(r.faults)),
                      _joined(r.features))
    return table


@list_cmd.command("drills", epilog="Examples:\n  stackdrill list drills\n  "
                                   "stackdrill list drills --json")
@JSON_OPTION
def list_drills(as_json: bool) -> None:
    """The drills shipped with stackdrill (run one by name: `stackdrill run NAME`), their
    topology, the faults they inject and the backends whose declared limits admit them."""
    emit(catalog.drill_rows(), as_json, drills_table)


@list_cmd.command("faults", epilog="Examples:\n  stackdrill list faults\n  "
                                   "stackdrill list faults --json")
@JSON_OPTION
def list_faults(as_json: bool) -> None:
    """Every fault kind: its parameters, whether `heal` undoes it, the backends that can
    realise it."""
    emit(catalog.fault_rows(), as_json, faults_table)


@list_cmd.command("backends", epilog="Examples:\n  stackdrill list backends\n  "
                                     "stackdrill list backends --json")
@JSON_OPTION
def list_backends(as_json: bool) -> None:
    """Every backend: whether it can run on this machine (and why not), what it needs,
    and the faults and topology features it can realise."""
    emit(catalog.backend_rows(), as_json, backends_table)


def labs_table(rows: Sequence[LabRow]) -> Table:
    """The labs as a table (`list labs`, and `status --all`)."""
    table = Table(title="labs", title_justify="left")
    for col in ("lab", "backend", "age", "held by", "lab store", "faults in force"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.lab, r.backend, _age(r.age_s), escape(r.held_by),
                      escape(r.store or "—"),
                      "?" if r.faults_in_force is None else ", ".join(r.faults_in_force) or "—")
    return table


@list_cmd.command("labs", epilog="Examples:\n  stackdrill list labs\n  stackdrill list labs --json")
@JSON_OPTION
def list_labs(as_json: bool) -> None:
    """Every lab on this machine: its backend, its age, what holds it between commands,
    the lab store whose commands drive it, and the faults in force."""
    emit(lab_rows(), as_json, labs_table)
    old = labstore.legacy_labs()
    if old:
        click.echo(f"stackdrill: note: ./.stackdrill holds lab(s) {', '.join(old)} from an "
                   "older version; STACKDRILL_HOME=.stackdrill reaches them", err=True)
