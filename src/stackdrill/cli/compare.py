"""`stackdrill compare`: run one drill on two backends (or read two saved reports) and
show where they disagree; every disagreement is a bug in one backend."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stackdrill.backends import backend_class
from stackdrill.cli.aliases import deprecated_option
from stackdrill.cli.output import check_report_path, write_report
from stackdrill.cli.render import console, quiet_logs
from stackdrill.drill import Drill, load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.drill.support import ensure_supported
from stackdrill.errors import BackendUnavailableError, InfrastructureError, InputError, Problem
from stackdrill.report.differential import SECTIONS, Differential, compare
from stackdrill.report.differential_html import format_value, side
from stackdrill.report.model import Report
from stackdrill.yamlio import problems_from_validation, read_text

DEFAULT_BACKENDS = "sim,libvirt"
MAX_REPORT_BYTES = 64 << 20  # read at most this much of a saved report (bounded memory)


@click.command("compare", epilog="""\b
Examples:
  stackdrill compare split-brain --backend sim --backend libvirt
  stackdrill compare lab/drills/vm-disk-failure.yaml --backend sim,libvirt --report diff.html
  stackdrill compare sim.json libvirt.json --report diff.json --report diff.html   # in CI""")
@click.argument("inputs", nargs=-1, metavar="DRILL | LEFT.json RIGHT.json",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backend", "backend_names", multiple=True, metavar="NAME[,NAME]",
              help=f"The two backends to run DRILL on: repeated, or LEFT,RIGHT.  "
                   f"[default: {DEFAULT_BACKENDS}]")
@deprecated_option("--backends", "--backend", "old_backends")
@click.option("--seed", type=int, default=None,
              help="Seed of both runs (default: the drill's).")
@deprecated_option("--reports", "the two reports as arguments (compare A.json B.json)",
                   "old_reports", nargs=2, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report", "out_paths", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the comparison: .json for JSON, .html for a self-contained page "
                   "(repeat it for both).")
@click.option("--quiet", "-q", is_flag=True,
              help="Only errors; the exit code says whether they agree.")
def compare_cmd(inputs: tuple[Path, ...], backend_names: tuple[str, ...],
                old_backends: str | None, seed: int | None,
                old_reports: tuple[Path, Path] | None, out_paths: tuple[Path, ...],
                quiet: bool) -> None:
    """Run DRILL (a file or a shipped drill's name) on two backends, or read two saved
    JSON reports (`stackdrill run --report x.json`), and compare verdicts, checks and
    DRBD/LVM/power state side by side; exit 0 when they agree, 1 when any row differs, 2
    on bad input or a backend that cannot run the drill.

    Out-of-sync is compared as zero versus non-zero (disk sizes differ between
    backends); times, seqnos, extents and trace hashes are not compared."""
    out = console(quiet=quiet)
    if quiet:
        quiet_logs()
    for path in out_paths:
        check_report_path(path)
    names = (*backend_names, *([old_backends] if old_backends else []))
    saved = _saved_reports(inputs, old_reports)
    if saved is not None:
        if names or seed is not None:
            raise click.UsageError("two saved reports are compared as they are: no "
                                   "--backend or --seed with them")
        left, right = (_read_report(path) for path in saved)
    elif len(inputs) == 1:
        backends = _backends(names or (DEFAULT_BACKENDS,))
        left, right = _run_both(load_drill(inputs[0]), backends, seed, quiet, out)
    else:
        raise click.UsageError("give either DRILL or two saved reports LEFT.json RIGHT.json")
    try:
        diff = compare(left, right)
    except ValueError as exc:
        raise InputError("reports", [Problem("", str(exc))]) from None
    print_differential(diff, out)  # the outcome first, then the files
    for path in out_paths:
        _write(diff, path)
        out.print(f"comparison written to {path}")
    raise SystemExit(0 if diff.agrees else 1)


def _saved_reports(inputs: tuple[Path, ...],
                   old: tuple[Path, Path] | None) -> tuple[Path, Path] | None:
    """The two saved reports to compare (two arguments, or the deprecated --reports);
    None when the arguments name one drill instead."""
    if old is not None:
        if inputs:
            raise click.UsageError("--reports compares saved reports: no DRILL with it")
        return old
    if len(inputs) == 2:
        return inputs[0], inputs[1]
    return None


def _backends(given: tuple[str, ...]) -> tuple[str, str]:
    """`--backend a --backend b` or `--backend a,b`: exactly two names."""
    names = [n.strip() for text in given for n in text.split(",")]
    if len(names) != 2 or not all(names):
        raise InputError("--backend", [Problem("", f"expected two backends (LEFT,RIGHT), "
                                                   f"got {','.join(given)!r}")])
    return names[0], names[1]


def _preflight(loaded: Drill, backend: str) -> None:
    """Refuse before the first run if either backend cannot run the drill: a comparison
    that dies half way wastes the (possibly long) first run."""
    cls = backend_class(backend)
    reason = cls.available()
    if reason is not None:
        raise BackendUnavailableError(f"backend {backend!r} cannot run here: {reason}")
    ensure_supported(loaded, backend, cls.capabilities)


def _run_both(loaded: Drill, backends: tuple[str, str], seed: int | None, quiet: bool,
              out: Console) -> tuple[Report, Report]:
    for backend in backends:
        _preflight(loaded, backend)

    def progress(message: str) -> None:
        if not quiet:
            out.print(f"[dim]{message}[/dim]", highlight=False)

    reports = []
    for backend in backends:
        status = nullcontext() if quiet else out.status(
            f"running {loaded.name} on {backend}", spinner="dots")
        with status:
            finished = execute(loaded, backend=backend, seed=seed, progress=progress)
        reports.append(judge(finished))
    return reports[0], reports[1]


def _read_report(path: Path) -> Report:
    """A saved report; one whose run ended in an infrastructure error has no verdict to
    compare, so the comparison ends the same way (exit 3)."""
    text = read_text(path, InputError, MAX_REPORT_BYTES,
                     "a report stackdrill writes is far smaller")
    try:
        report = Report.model_validate_json(text)
    except ValidationError as exc:
        raise InputError(str(path), problems_from_validation(exc)) from None
    if report.errored:
        raise InfrastructureError(f"{path}: the {report.backend} run ended in an "
                                  f"infrastructure error, nothing to compare: {report.error}")
    return report


def _write(diff: Differential, path: Path) -> None:
    if path.suffix == ".html":
        from stackdrill.report.differential_html import render_differential_html

        write_report(path, render_differential_html(diff))
    else:
        write_report(path, diff.to_json())


def differential_table(diff: Differential) -> Table:
    """Every compared row, both backends side by side, disagreements in red."""
    left = side(diff.left_backend, diff.left_seed)
    right = side(diff.right_backend, diff.right_seed)
    table = Table(title=escape(f"{diff.drill}: {left} vs {right}"), title_justify="left")
    for col in ("what", escape(left), escape(right), "agree"):
        table.add_column(col, overflow="fold")
    for name in SECTIONS:
        rows = diff.section(name)
        if not rows:
            continue
        table.add_row(f"[bold]{name}[/bold]", "", "", "")
        for row in rows:
            cells = (escape(row.what), escape(format_value(row.left)),
                     escape(format_value(row.right)))
            if row.agree:
                table.add_row(*cells, "[green]yes[/green]")
            else:
                table.add_row(*cells, "[bold red]NO[/bold red]", style="red")
        table.add_section()
    return table


def print_differential(diff: Differential, out: Console, *, quiet: bool = False) -> None:
    """The table (unless quiet), each disagreement on its own line, then one summary line."""
    if not quiet:
        out.print(differential_table(diff))
    for row in diff.disagreements:
        out.print(f"[red]differs[/red] {row.section}: {escape(row.what)}: "
                  f"{escape(format_value(row.left))} vs {escape(format_value(row.right))}")
        for backend, detail in ((diff.left_backend, row.left_detail),
                                (diff.right_backend, row.right_detail)):
            if detail:
                out.print(f"  {escape(backend)}: {escape(detail)}", highlight=False)
    pair = escape(f"{diff.drill} {side(diff.left_backend, diff.left_seed)} vs "
                  f"{side(diff.right_backend, diff.right_seed)}")
    if diff.agrees:
        out.print(f"[bold green]AGREE[/bold green] {pair}: {len(diff.rows)} rows")
    else:
        out.print(f"[bold red]DISAGREE[/bold red] {pair}: "
                  f"{len(diff.disagreements)} of {len(diff.rows)} rows differ")
