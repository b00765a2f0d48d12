"""Rich tables for the terminal: the only place stackdrill formats for a person."""

from __future__ import annotations

import logging
import os
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stackdrill.api import Capabilities
from stackdrill.faults import FAULT_KINDS
from stackdrill.report.model import Report

# Rich cuts output to 80 columns when stdout is no terminal; piped into a file, grep or a
# CI log, a long lab or host name must come through whole (COLUMNS still rules when set).
PIPED_WIDTH = 4096


def console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """The console every command prints through: a terminal's width, none when piped;
    `quiet` (-q) prints nothing at all, errors go through click.echo(err=True)."""
    out = Console(highlight=False, stderr=stderr, quiet=quiet)
    if out.is_terminal or "COLUMNS" in os.environ:
        return out
    return Console(highlight=False, stderr=stderr, quiet=quiet, width=PIPED_WIDTH,
                   soft_wrap=True)


def quiet_logs() -> None:
    """-q: the engine's warnings (fencing cmp1: powering it off) are progress, not
    errors; only errors reach stderr, until the command ends."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    click.get_current_context().call_on_close(lambda: root.setLevel(level))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def print_report(report: Report, *, quiet: bool = False) -> None:
    """The instances, phases and checks, then the verdict line; quiet (-q): nothing on a
    pass, the verdict line on stderr on a failure (the exit code says which)."""
    if quiet and report.passed:
        return
    out = console(stderr=quiet)
    if not quiet:
        table = Table(title=f"instances — {report.drill}", title_justify="left")
        for col in ("instance", "before", "after", "state", "attach", "acked", "lost", "RTO s"):
            table.add_column(col, justify="right" if col in ("acked", "lost", "RTO s") else
                             "left")
        for inst in report.instances:
            lost = f"[red]{inst.lost_writes}[/red]" if inst.lost_writes else "0"
            table.add_row(inst.name, inst.host_before or "—", inst.host_after or "—", inst.state,
                          inst.attach_mode or "—", str(inst.acked_writes), lost,
                          _fmt(inst.rto_s))
        out.print(table)
        if report.phases:
            phases = Table(title="where the time went (lab seconds)", title_justify="left")
            phases.add_column("phase")
            phases.add_column("seconds", justify="right")
            for name, secs in report.phases.items():
                phases.add_row(name, f"{secs:.1f}")
            out.print(phases)
        checks = Table(title="checks", title_justify="left")
        checks.add_column("check")
        checks.add_column("result")
        checks.add_column("detail", overflow="fold")
        for check in report.checks:
            mark = "[green]ok[/green]" if check.ok else (
                "[red]FAIL[/red]" if check.ran else "[red]NOT RUN[/red]")
            checks.add_row(escape(check.name), mark, escape(check.detail))  # drbd[r0]
        out.print(checks)
    colour = "green" if report.passed else "red"
    out.print(f"[bold {colour}]{report.verdict.upper()}[/bold {colour}] {report.drill} "
              f"backend={report.backend} seed={report.seed} "
              f"trace={report.trace_sha256[:16] or '—'}")


def backends_table(rows: list[tuple[str, Capabilities, str | None]]) -> Table:
    table = Table(title="backends and what they can realise", title_justify="left")
    table.add_column("fault")
    for name, _caps, _available in rows:
        table.add_column(name)
    for kind in FAULT_KINDS:
        table.add_row(kind, *["[green]yes[/green]" if c.supports_fault(kind) else "—"
                              for _n, c, _a in rows])
    table.add_row("[bold]here[/bold]", *["[green]available[/green]" if a is None else
                                         f"[red]{a}[/red]" for _n, _c, a in rows])
    return table


def kv_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, str(value))
    return table
