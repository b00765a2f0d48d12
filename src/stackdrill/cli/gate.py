"""`stackdrill gate`: the standard drill set against one topology, one verdict per drill,
one report for a rollout ticket."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stackdrill import shipped
from stackdrill.backends import REGISTRY
from stackdrill.cli.complete import complete_backend
from stackdrill.cli.importing import unmapped_line
from stackdrill.cli.output import write_report
from stackdrill.cli.render import console, quiet_logs
from stackdrill.errors import InputError, OutputError, Problem
from stackdrill.gate.dangers import danger_drills
from stackdrill.gate.files import drill_yaml, topology_yaml
from stackdrill.gate.plan import GateDrill, Planned
from stackdrill.gate.report import GateReport, GateVerdict
from stackdrill.gate.run import plan_gate, run_gate
from stackdrill.topology import Topology
from stackdrill.topology.load import load_topology

COLOURS = {GateVerdict.PASS: "green", GateVerdict.FAIL: "red", GateVerdict.ERROR: "yellow",
           GateVerdict.NOT_APPLICABLE: "dim"}


def complete_topology(_ctx: click.Context, _param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """Shell completion of PATH: the shipped topologies' names, and files."""
    names = [CompletionItem(t.name) for t in shipped.topologies()
             if t.name.startswith(incomplete)]
    return [*names, CompletionItem(incomplete, type="file")]


@click.command(epilog="""\b
Examples:
  stackdrill gate nova-drbd
  stackdrill gate fixtures/two-node-clvm --report gate-report
  stackdrill gate lab/topologies/two-node-clvm.yaml
  stackdrill gate my-stack.yaml --only host-loss,split-brain --seed 7 -q
  stackdrill gate drbd-pair --json
PATH is a configuration directory (imported as `stackdrill import` does, see
README "Importing your configuration"), a topology file, or the name of a shipped
topology (lab/topologies).""")
@click.argument("path", type=click.Path(path_type=Path),
                shell_complete=complete_topology)
@click.option("--backend", default="sim", show_default=True, shell_complete=complete_backend,
              help=f"Where the labs run: {', '.join(sorted(REGISTRY))}.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of every drill.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the report into this directory: gate.html (the summary and every "
                   "drill's report, one file to attach), gate.json, and per drill "
                   "drills/NAME.html and drills/NAME.yaml (rerun one with `stackdrill run`), "
                   "with the topology as topology.yaml. Only the directory itself is "
                   "created.")
@click.option("--only", default=None, metavar="NAMES",
              help="Run only these drills (comma-separated: host-loss, storage-primary-loss, "
                   "disk-failure, mgmt-partition, split-brain, returning-host, "
                   "maintenance-reboot).")
@click.option("--quiet", "-q", is_flag=True,
              help="Only errors (and a verdict other than PASS, on stderr); the exit code "
                   "says the verdict.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the gate report as JSON on stdout (progress goes to stderr).")
def gate(path: Path, backend: str, seed: int, report_dir: Path | None, only: str | None,
         quiet: bool, as_json: bool) -> None:
    """Run the standard drill set (host loss, storage primary loss, disk failure,
    management partition, split brain, returning host, maintenance reboot), and for each
    dangerous setting found (`stackdrill lint`) the drill that shows it, against the
    operator's configuration directory or topology at PATH; give one verdict per drill:
    PASS, FAIL, ERROR (the lab could not be brought up or observed) or NOT APPLICABLE
    (with the reason). Exit 0 when every
    applicable drill passed, 1 when one failed, 2 on bad input or a backend that cannot
    realise a drill, 3 when a drill had an infrastructure error and none failed, 4 when
    the report could not be written (the verdict was printed first)."""
    if report_dir is not None:
        check_report_dir(report_dir)
    out = console(quiet=quiet, stderr=as_json)
    if quiet:
        quiet_logs()
    topology, source = _topology(path, out)
    extra = danger_drills(topology)
    planned = plan_gate(topology, extra)  # built once here (a large lab takes seconds)
    chosen = _only(only, planned)

    def progress(message: str) -> None:
        out.print(f"[dim]{escape(message)}[/dim]", highlight=False)

    result = run_gate(topology, backend=backend, seed=seed, extra=extra, only=chosen,
                      progress=progress, topology_source=source)
    if as_json:
        click.echo(result.to_json())
    else:
        _print(result, quiet)
    if report_dir is not None:
        write_gate_report(report_dir, result, topology,
                          [p for p in planned if chosen is None or p.name in chosen])
        out.print(f"report written to {report_dir / 'gate.html'}")
    raise SystemExit(result.exit_code)


def _topology(path: Path, out: Console) -> tuple[Topology, str]:
    """The topology PATH gives and how to name its source: a configuration directory is
    imported (refused, exit 2, when what it could not map would make the topology wrong),
    a file loaded, else PATH names a shipped topology."""
    if path.is_dir():
        from stackdrill.importer import import_config

        result = import_config(path)
        if result.wrong:
            raise InputError(str(path)[:200], [Problem("", f"not mapped, the topology would "
                                                       f"be wrong: {unmapped_line(u)}")
                                               for u in result.wrong])
        if result.unmapped:
            out.print(f"[dim]imported {escape(str(path))}: {len(result.unmapped)} option(s) "
                      f"not mapped or modelled differently (`stackdrill import` lists "
                      f"them)[/dim]", highlight=False)
        return result.topology, f"{path} (imported)"
    if path.exists():
        return load_topology(path), str(path)
    found = shipped.topology_path(str(path))
    if found is None:
        raise InputError(str(path)[:200], [Problem("", "no such file and no shipped topology "
                                                   "of that name")])
    return load_topology(found), str(found)


def _only(only: str | None, planned: list[Planned]) -> frozenset[str] | None:
    """The drill names --only picks, each checked against the gate's drills."""
    if only is None:
        return None
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = [p.name for p in planned]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InputError("--only", [Problem(n[:80], f"no such gate drill (known: "
                                            f"{', '.join(known)})") for n in unknown]
                         or [Problem("", "names no drill")])
    return frozenset(names)


def _print(result: GateReport, quiet: bool) -> None:
    """The summary table, then the verdict line; quiet: the verdict line on stderr, and
    only when it is not PASS."""
    if quiet and result.verdict is GateVerdict.PASS:
        return
    out = console(stderr=quiet)
    if not quiet:
        table = Table(title=f"gate — {result.topology} on {result.backend}, seed {result.seed}",
                      title_justify="left")
        for col in ("drill", "victim", "verdict", "RTO s", "what failed / why"):
            table.add_column(col, justify="right" if col == "RTO s" else "left",
                             overflow="fold")
        for r in result.results:
            colour = COLOURS[r.verdict]
            what = "; ".join(r.failed) if r.failed else r.reason
            table.add_row(r.name, escape(r.victim or "—"), f"[{colour}]{r.verdict}[/{colour}]",
                          "—" if r.rto_s is None else f"{r.rto_s:.1f}", escape(what))
        out.print(table)
    colour = COLOURS[result.verdict]
    out.print(f"[bold {colour}]{result.verdict}[/bold {colour}] gate {result.topology} "
              f"backend={result.backend} seed={result.seed} topology sha256 "
              f"{result.topology_sha256[:16]}" + (f": {escape(result.reason)}"
                                                  if result.reason else ""))


def check_report_dir(path: Path) -> None:
    """Refuse, before any drill runs, a report directory that could not be written: a
    symbolic link, something that is not a directory, a missing parent."""
    where = str(path)[:200]
    if path.is_symlink():
        raise InputError("--report", [Problem(where, "is a symbolic link: refusing to write "
                                              "through it")])
    if path.exists() and not path.is_dir():
        raise InputError("--report", [Problem(where, "exists and is not a directory")])
    if not path.exists() and not path.parent.is_dir():
        raise InputError("--report", [Problem(where, f"directory {path.parent} does not "
                                              "exist (only the report's own directory is "
                                              "created)")])


def write_gate_report(directory: Path, result: GateReport, topology: Topology,
                      planned: list[Planned]) -> None:
    """gate.html, gate.json, topology.yaml, and drills/NAME.html and .yaml per drill."""
    from stackdrill.gate.html import drill_page, render_gate_html

    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write report {directory}: {exc.strerror or exc}") from None
    drills = {p.name: p for p in planned if isinstance(p, GateDrill)}
    write_report(directory / "topology.yaml", topology_yaml(topology))
    pages, links = {}, {}
    for r in result.results:
        item = drills.get(r.name)
        if item is None:
            continue
        write_report(directory / "drills" / f"{r.name}.yaml",
                     drill_yaml(item.drill.spec, "../topology.yaml", result.seed))
        pages[r.name] = drill_page(r, item.drill.topology)
        if pages[r.name]:
            links[r.name] = f"drills/{r.name}.html"
            write_report(directory / links[r.name], pages[r.name])
    descriptions = {name: item.drill.spec.description for name, item in drills.items()}
    write_report(directory / "gate.json", result.to_json())
    write_report(directory / "gate.html", render_gate_html(result, pages, descriptions, links))
