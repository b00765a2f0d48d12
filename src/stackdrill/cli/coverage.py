"""`stackdrill coverage`: the field's own suites (drbd9-tests, lvm2, Pacemaker CTS,
Jepsen) held against the drills this lab ships, and the backends each can run on."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from stackdrill.cli.render import console
from stackdrill.coverage import Status, coverage_rows, load_catalogue, markdown_table, summary
from stackdrill.coverage.model import DEFAULT_CATALOGUE, DEFAULT_DRILLS

STYLE = {Status.COVERED: "green", Status.MISSING: "yellow", Status.OUT_OF_SCOPE: "dim"}


@click.command("coverage", epilog="""\b
Examples:
  stackdrill coverage
  stackdrill coverage --json > coverage.json
  stackdrill coverage --markdown""")
@click.option("--catalogue", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_CATALOGUE, show_default=True,
              help="The peer suites' situations and the drills that rehearse them.")
@click.option("--drills", "drills_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DRILLS, show_default=True, help="Where the drills are.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--markdown", is_flag=True, help="The README's table on stdout.")
def coverage_cmd(catalogue: Path, drills_dir: Path, as_json: bool, markdown: bool) -> None:
    """Each situation of the peer suites: the drills that rehearse it and the backends
    they run on (derived from the backends' declared limits), or what the lab still
    cannot say, or why it does not fit a two-node DRBD 8.4 lab."""
    rows = coverage_rows(load_catalogue(catalogue), drills_dir)
    if markdown:
        click.echo(markdown_table(rows), nl=False)
    elif as_json:
        click.echo(json.dumps([{
            "suite": r.situation.suite.value, "test": r.situation.test,
            "status": r.status.value, "drills": list(r.situation.drills),
            "scenarios": list(r.situation.scenarios), "runs_on": list(r.runs_on),
            "real": list(r.on_real), "partly": r.situation.partly,
            "missing": r.situation.missing, "out_of_scope": r.situation.out_of_scope,
        } for r in rows], indent=2))
    else:
        table = Table(title="what the field's suites rehearse, and this lab",
                      title_justify="left")
        for column in ("suite", "test", "status", "drills", "can run on", "runs on real", "note"):
            table.add_column(column, overflow="fold")
        for r in rows:
            s = r.situation
            note = s.partly or s.missing or s.out_of_scope or ""
            table.add_row(s.suite.value, escape(s.test),
                          f"[{STYLE[r.status]}]{r.status.value}[/{STYLE[r.status]}]",
                          escape(", ".join(s.drills)), ", ".join(r.runs_on),
                          ", ".join(r.on_real), escape(note))
        out = console()
        out.print(table)
        out.print(summary(rows))
