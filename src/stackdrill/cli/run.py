"""`stackdrill run`, `validate`, `schema`, `backends`: drills and input files."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

import click

from stackdrill.backends import REGISTRY, backend_class
from stackdrill.cli.complete import complete_backend, complete_drill
from stackdrill.cli.kept import keeping
from stackdrill.cli.lab import INVENTORY_OPTION
from stackdrill.cli.output import check_report_path, write_report
from stackdrill.cli.render import console, print_report, quiet_logs
from stackdrill.drill import Drill, DrillSpec, load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.load import find_drill, load_any
from stackdrill.drill.runner import execute
from stackdrill.errors import InfrastructureError, InputError, OutputError
from stackdrill.faults import FAULT_KINDS
from stackdrill.recovery.dburl import inventory_url
from stackdrill.report.model import Report
from stackdrill.topology import Topology


@click.command(epilog="""\b
Examples:
  stackdrill run nova-host-failure
  stackdrill run nova-host-failure --seed 7 --report out/report.html
  stackdrill run lab/drills/overlay.yaml --backend netns --keep --lab ov1
DRILL is a file or the name of a shipped drill (stackdrill list drills).""")
@click.argument("drill", type=click.Path(dir_okay=False, path_type=Path),
                shell_complete=complete_drill)
@click.option("--backend", default="sim", show_default=True, shell_complete=complete_backend,
              help=f"Where the lab runs: {', '.join(sorted(REGISTRY))}.")
@click.option("--seed", type=int, default=None, help="Seed of the run (default: the drill's).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report: .json for JSON, .html for a self-contained page "
                   "(written after the verdict is printed, atomically; never through a "
                   "symbolic link; only its own directory is created).")
@click.option("--keep", is_flag=True,
              help="Leave the lab standing after the drill, recorded as a named lab "
                   "(`status --all` lists it, `down --lab NAME` removes it).")
@click.option("--lab", "lab_name", default=None,
              help="Name of the kept lab  [default: DRILL-SEED]")
@click.option("--quiet", "-q", is_flag=True,
              help="Only errors (and a failed verdict, on stderr); the exit code says the "
                   "verdict.")
@INVENTORY_OPTION
def run(drill: Path, backend: str, seed: int | None, report_path: Path | None, keep: bool,
        lab_name: str | None, quiet: bool, inventory: str | None) -> None:
    """Run one DRILL (a file, or a shipped drill's name) and print its report; exit 0
    when every expectation held, 1 when one failed, 2 on bad input or a backend that
    cannot realise the drill, 3 when the lab could not be brought up, driven or observed
    (no verdict), 4 when the report could not be written (the verdict was printed first)."""
    if report_path is not None:
        check_report_path(report_path)
    drill = find_drill(drill)  # a path, or the name of a shipped drill
    target = inventory_url(inventory)
    loaded = load_drill(drill)
    effective_seed = loaded.spec.seed if seed is None else seed
    out = console(quiet=quiet)
    if quiet:
        quiet_logs()

    def progress(message: str) -> None:
        out.print(f"[dim]{message}[/dim]", highlight=False)

    with keeping(keep, loaded, drill, backend, effective_seed, lab_name, out) as kept:
        try:
            with out.status(f"running {loaded.name} on {backend}", spinner="dots") \
                    if not quiet else nullcontext():
                finished = execute(loaded, backend=backend, seed=seed, keep=keep,
                                   lab_name=kept.name, progress=progress, inventory=target)
        except InfrastructureError as exc:
            _no_verdict(exc, loaded, backend, effective_seed, report_path)
        report = judge(finished)
        print_report(report, quiet=quiet)
        if report_path is not None:
            write_report(report_path, _render(report, loaded, report_path))
            out.print(f"report written to {report_path}")
    raise SystemExit(0 if report.passed else 1)


def _render(report: Report, loaded: Drill, path: Path) -> str:
    if path.suffix == ".html":
        from stackdrill.report.html import render_html

        return render_html(report, loaded.topology)
    return report.to_json()


def _no_verdict(exc: InfrastructureError, loaded: Drill, backend: str, seed: int,
                report_path: Path | None) -> NoReturn:
    """An infrastructure error: say so, write the report in its `error` state, exit 3
    (also when that report cannot be written: the run's own outcome comes first)."""
    reason = str(exc)
    for line in reason.splitlines() or ["(no message)"]:
        click.echo(f"stackdrill: error: {line}", err=True)
    click.echo("stackdrill: no verdict: the lab could not be brought up, driven or "
               "observed; this run says nothing about the recovery under test", err=True)
    if report_path is not None:
        report = Report.infrastructure_error(drill=loaded.name, backend=backend, seed=seed,
                                             topology=loaded.topology.name, reason=reason)
        try:
            write_report(report_path, _render(report, loaded, report_path))
        except OutputError as output:
            click.echo(f"stackdrill: error: {output}", err=True)
        else:
            click.echo(f"report written to {report_path}", err=True)
    raise SystemExit(exc.exit_code)


@click.command(epilog="""\b
Examples:
  stackdrill validate lab/topologies/nova-drbd.yaml
  stackdrill validate lab/topologies/*.yaml lab/drills/*.yaml""")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check topology and drill FILES; print every problem with its file and path inside
    it; exit 2 when any file is wrong."""
    bad = 0
    out = console()
    for path in files:
        try:
            kind = "topology" if isinstance(load_any(path), Topology) else "drill"
            out.print(f"[green]ok[/green]   {path} ({kind})", highlight=False)
        except InputError as exc:
            bad += 1
            for line in exc.render().splitlines():
                click.echo(line, err=True)
    if bad:
        raise SystemExit(2)


@click.command(epilog="""\b
Examples:
  stackdrill schema topology > topology.schema.json
  stackdrill schema drill""")
@click.argument("kind", type=click.Choice(["topology", "drill"]), default="drill")
def schema(kind: str) -> None:
    """Print the JSON Schema of topology or drill files, for editors to complete and check."""
    model = Topology if kind == "topology" else DrillSpec
    click.echo(json.dumps(model.model_json_schema(), indent=2))


@click.command(epilog="""\b
Examples:
  stackdrill backends
  stackdrill backends --markdown   # the table in the README""")
@click.option("--markdown", is_flag=True, help="Print the backend x fault table as Markdown.")
def backends(markdown: bool) -> None:
    """Which faults and topology features each backend can realise (its declared limits)."""
    rows = []
    for name in sorted(REGISTRY):
        try:
            cls = backend_class(name)
        except ImportError as exc:  # e.g. libvirt-python: the `vm` extra
            click.echo(f"stackdrill: note: backend {name} is not installed: {exc}", err=True)
            continue
        rows.append((name, cls.capabilities, cls.available()))
    if markdown:
        click.echo("| fault / feature | " + " | ".join(n for n, _c, _a in rows) + " |")
        click.echo("|---|" + "---|" * len(rows))
        for kind in FAULT_KINDS:
            marks = ["yes" if c.supports_fault(kind) else "—" for _n, c, _a in rows]
            click.echo(f"| `{kind}` | " + " | ".join(marks) + " |")
        from stackdrill.api import FEATURES

        for feature in FEATURES:
            marks = ["yes" if feature in c.features else "—" for _n, c, _a in rows]
            click.echo(f"| {feature} | " + " | ".join(marks) + " |")
        click.echo("| needs | " + " | ".join(c.needs for _n, c, _a in rows) + " |")
        return
    from stackdrill.cli.render import backends_table

    console().print(backends_table(rows))
