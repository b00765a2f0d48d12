"""`stackdrill lint`: the dangerous settings of a topology, each with the drill that
demonstrates it (stackdrill.dangers). Errors (what the real software refuses) stay with
`stackdrill validate`; a file with errors is bad input here too (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stackdrill.dangers import Danger, DrillUnavailable, find_dangers
from stackdrill.drill.load import load_any
from stackdrill.drill.model import Drill
from stackdrill.echo import cut
from stackdrill.errors import InputError
from stackdrill.topology import Topology


@click.command(epilog="""\b
Examples:
  stackdrill lint lab/topologies/two-node-clvm.yaml
  stackdrill lint imported.yaml --json
  stackdrill lint imported.yaml --run   # run each danger's drill on the simulator
\b
Exit status: 0 no danger, 1 a danger found (or, with --run, a drill that does not
show it), 2 a file that is not a valid topology or drill.""")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the dangers as a JSON list.")
@click.option("--run", "run_drills", is_flag=True,
              help="Run each danger's drill on the simulator and print its verdict "
                   "(it fails where the danger is: that is the demonstration).")
def lint(files: tuple[Path, ...], as_json: bool, run_drills: bool) -> None:
    """Flag the settings of topology (or drill) FILES that the real software accepts and
    that bite later: one line per danger, `file: path: danger CODE: why (shown by:
    DRILL)`, the drill built for this very topology. A drill file is linted for its
    topology (paths then start with `topology.`)."""
    found: list[tuple[Path, str, Danger, Topology]] = []
    bad = 0
    for path in files:
        try:
            loaded = load_any(path)
        except InputError as exc:
            bad += 1
            for line in exc.render().splitlines():
                click.echo(line, err=True)
            continue
        topology, prefix = ((loaded.topology, "topology.") if isinstance(loaded, Drill)
                            else (loaded, ""))
        found += [(path, prefix + d.path, d, topology) for d in find_dangers(topology)]
    if as_json:
        click.echo(json.dumps([_as_dict(path, where, d) for path, where, d, _t in found],
                              indent=2))
    else:
        for path, where, danger, _topology in found:
            click.echo(f"{path}: {where}: danger {danger.code.value}: {danger.why} "
                       f"(shown by: {danger.drill_name})")
    shown = all(_demonstrated(path, d, t) for path, _w, d, t in found) if run_drills else True
    if bad:
        raise SystemExit(2)
    if found or not shown:
        raise SystemExit(1)


def _as_dict(path: Path, where: str, danger: Danger) -> dict[str, str]:
    return {"file": str(path), "path": where, "code": danger.code.value,
            "setting": danger.setting, "why": danger.why, "subject": danger.subject,
            "drill": danger.drill_name, "shows": danger.shows}


def _demonstrated(path: Path, danger: Danger, topology: Topology) -> bool:
    """Run the danger's drill on the simulator; True when it fails as the danger says."""
    from stackdrill.drill.judge import judge
    from stackdrill.drill.runner import execute

    try:
        drill = danger.drill(topology)
    except DrillUnavailable as exc:
        click.echo(f"{path}: {danger.drill_name}: not run: {exc}", err=True)
        return True
    report = judge(execute(drill, backend="sim"))
    failed = "; ".join(f"{c.name}: {cut(c.detail, 300)}" for c in report.failed_checks)
    if report.passed:
        click.echo(f"{path}: {danger.drill_name}: pass: the drill did not show the danger "
                   f"here ({danger.shows})")
        return False
    click.echo(f"{path}: {danger.drill_name}: {report.verdict}: {failed}")
    return True
