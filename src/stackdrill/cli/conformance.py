"""`stackdrill conformance`: the simulator against every recording of the real software
in the corpus, per situation and field: recorded, simulated, agree or differ."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stackdrill.cli.output import check_report_path, write_report
from stackdrill.cli.render import console
from stackdrill.conformance import DEFAULT_DIR, Comparison, compare_all, read_all, to_json
from stackdrill.conformance.html import render_conformance_html
from stackdrill.conformance.situations import SITUATIONS
from stackdrill.errors import InputError, Problem


@click.command("conformance", epilog="""\b
Examples:
  stackdrill conformance
  stackdrill conformance packet-loss-whole vxlan-mtu-sender-low
  stackdrill conformance --json > conformance.json
  stackdrill conformance --report conformance.html
Re-record the corpus (root, slow): scripts/record-conformance.sh""")
@click.argument("situations", nargs=-1)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, show_default=True, help="Where the recordings are.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the comparison as a page (.html) or as JSON (.json).")
def conformance_cmd(situations: tuple[str, ...], directory: Path, as_json: bool,
                    report: Path | None) -> None:
    """Run every recorded situation (or the SITUATIONS named) on the simulator and compare
    it with its recording, field by field within the declared tolerances; exit 0 when all
    agree, 1 when any field differs, 2 on a malformed recording or an unknown name."""
    if report is not None:
        check_report_path(report)
    recordings = read_all(directory, SITUATIONS)
    recorded = {r.situation for r in recordings}
    missing = [name for name in situations if name not in recorded]
    if missing:
        raise InputError("command line", [Problem(name, f"no recording of this situation "
                                                        f"in {directory}") for name in missing])
    if situations:
        recordings = [r for r in recordings if r.situation in situations]
    if not recordings:
        raise InputError(str(directory), [Problem("", "no recording (*.json) to compare")])
    comparisons = compare_all(recordings, SITUATIONS)
    if as_json:
        click.echo(json.dumps(to_json(comparisons), indent=2, sort_keys=True))
    else:
        print_comparisons(comparisons, console())
    if report is not None:
        write_report(report, render_conformance_html(comparisons) if report.suffix == ".html"
                     else json.dumps(to_json(comparisons), indent=2, sort_keys=True))
    raise SystemExit(0 if all(c.agrees for c in comparisons) else 1)


def comparison_table(comparison: Comparison) -> Table:
    kernel = comparison.versions.get("kernel", "?")
    title = (f"{comparison.situation} — {comparison.exercises} "
             f"(recorded on {comparison.backend}, kernel {kernel}, {comparison.recorded_on})")
    table = Table(title=escape(title), title_justify="left")
    for col in ("field", "recorded", "simulated", "tolerance", "agree"):
        table.add_column(col, overflow="fold")
    for row in comparison.rows:
        cells = (escape(row.name), escape(row.recorded.show()),
                 escape(row.simulated.show() if row.simulated else "(none)"),
                 row.tolerance.show())
        if row.not_modelled:
            table.add_row(*cells, f"[yellow]not modelled[/yellow]: {escape(row.not_modelled)}")
        elif row.agrees:
            table.add_row(*cells, "[green]agree[/green]")
        else:
            table.add_row(*cells, "[bold red]DIFFER[/bold red]", style="red")
    return table


def print_comparisons(comparisons: list[Comparison], out: Console) -> None:
    for comparison in comparisons:
        out.print(comparison_table(comparison))
    differ = [c.situation for c in comparisons if not c.agrees]
    if differ:
        out.print(f"[bold red]DIFFER[/bold red] {len(differ)} of {len(comparisons)} "
                  f"situation(s): {escape(', '.join(differ))}")
    else:
        out.print(f"[bold green]AGREE[/bold green] all {len(comparisons)} situation(s)")
    uncovered = sum(len(c.uncovered) for c in comparisons)
    if uncovered:
        out.print(f"{uncovered} recorded field(s) not modelled, each with its reason above")
