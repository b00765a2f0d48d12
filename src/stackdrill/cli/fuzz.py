"""`stackdrill fuzz`: replay one random drill, or sweep a range of seeds — here, on a Dask
LocalCluster (`-j N`) or on a Dask scheduler (`--scheduler`) — storing each verdict as it
arrives against the code's commit, so a stopped sweep resumes where it was.

Everything heavy (the simulator, SQLAlchemy, Dask) is imported inside the command, so
`stackdrill --help` does not pay for it.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from stackdrill.errors import InfrastructureError, InputError, Problem, until_stdout_closes

if TYPE_CHECKING:
    from rich.console import Console

    from stackdrill.fuzz.results import ResultStore
    from stackdrill.fuzz.sweep import Runner, SeedResult
    from stackdrill.fuzz.version import CodeVersion

MAX_LISTED = 20  # failing seeds listed at the end; the database has them all


@dataclass(frozen=True)
class SweepRequest:
    """A sweep as the user asked for it: enough to print the command that resumes it."""

    start: int
    stop: int
    jobs: int
    scheduler: str | None
    results: str

    def command(self) -> str:
        from stackdrill.fuzz.results import shown

        words = ["stackdrill", "fuzz", "--sweep", f"{self.start}:{self.stop}"]
        words += ["-j", str(self.jobs)] if self.jobs > 1 else []
        words += ["--scheduler", self.scheduler] if self.scheduler else []
        words += ["--results", shown(self.results)]
        return shlex.join(words)


@dataclass
class Tally:
    ran: int = 0
    failed: list[SeedResult] = field(default_factory=list)


def parse_sweep(text: str) -> tuple[int, int]:
    """START:STOP, seeds START..STOP-1, 0 <= START < STOP."""
    first, sep, end = text.partition(":")
    try:
        start, stop = int(first), int(end)
    except ValueError:
        start = stop = -1
    if not sep or start < 0 or stop <= start:
        raise InputError("command line", [Problem("--sweep", f"{text[:40]!r}: expected "
                                                  "START:STOP with 0 <= START < STOP")])
    return start, stop


@click.command("fuzz", epilog="""\b
Examples:
  stackdrill fuzz --seed 1716 --shrink
  stackdrill fuzz --sweep 0:2000 -j 2
  stackdrill fuzz --sweep 0:100000 --scheduler tcp://10.0.0.5:8786 --results sqlite:///fuzz.sqlite""")
@click.option("--seed", type=click.IntRange(min=0), help="Replay one random drill and explain it.")
@click.option("--shrink", is_flag=True, help="With --seed: shrink a failing schedule.")
@click.option("--sweep", metavar="START:STOP", help="Run seeds START..STOP-1 and store each "
              "verdict; seeds already stored for this commit are skipped (resume).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="1: in this process; N > 1: a Dask LocalCluster of N worker processes.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Sweep on an existing Dask scheduler (tcp:// or tls://) instead.")
@click.option("--results", metavar="URL", default=None,
              help="SQLAlchemy URL of the results database  [default: "
                   "sqlite:///stackdrill-fuzz.sqlite, in the current directory]")
@click.option("--json", "as_json", is_flag=True,
              help="After a sweep, print its failing seeds as JSON (known-bug lists).")
@click.option("-q", "--quiet", is_flag=True, help="No progress; the summary and failures only.")
def fuzz_cmd(seed: int | None, shrink: bool, sweep: str | None, jobs: int,
             scheduler: str | None, results: str | None, as_json: bool, quiet: bool) -> None:
    """Random drills: seeded fault schedules on the simulator, every invariant checked.
    Exit 0 when every seed passed, 1 when one failed, 2 on bad input, 3 when the
    scheduler or the results database cannot be reached, 130 when interrupted (what was
    stored stays; the same command resumes)."""
    if (seed is None) == (sweep is None):
        raise InputError("command line", [Problem("fuzz", "give exactly one of --seed, --sweep")])
    if shrink and seed is None:
        raise InputError("command line", [Problem("--shrink", "only with --seed (a sweep "
                                                  "lists each failure's replay command)")])
    if seed is not None:  # `| head` stops it quietly with the shell's code (141)
        raise SystemExit(until_stdout_closes(lambda: _replay(seed, shrink)))
    assert sweep is not None
    start, stop = parse_sweep(sweep)
    if scheduler is not None:
        from stackdrill.fuzz.sweep import check_scheduler

        check_scheduler(scheduler)
        if jobs > 1:
            raise InputError("command line", [Problem(
                "-j", "the scheduler's workers run the seeds; -j is for a local cluster")])
    from stackdrill.fuzz.results import DEFAULT_URL

    request = SweepRequest(start, stop, jobs, scheduler, results or DEFAULT_URL)
    raise SystemExit(until_stdout_closes(lambda: _sweep(request, as_json=as_json, quiet=quiet)))


def _replay(seed: int, shrink: bool) -> int:
    from stackdrill.fuzz.drive import run_seed, shrink_outcome

    outcome = run_seed(seed)
    click.echo(outcome.summary())
    if outcome.ok:
        return 0
    if shrink:
        small = shrink_outcome(seed, outcome.failed)
        click.echo("shrunk schedule (still fails " + ", ".join(outcome.failed) + "):")
        click.echo("\n".join(f"  {line}" for line in small))
    return 1


@contextmanager
def _runner(request: SweepRequest, out: Console, quiet: bool) -> Iterator[Runner]:
    """In this process, or on Dask; engine logs only with --debug (thousands of drills)."""
    from stackdrill.fuzz.sweep import InProcess, OnDask, dask_client

    debug = bool((click.get_current_context().find_root().obj or {}).get("debug"))
    level = logging.DEBUG if debug else logging.CRITICAL
    if request.scheduler is None and request.jobs == 1:
        yield InProcess(level)
        return
    if not quiet:
        out.print(f"[dim]connecting to the Dask scheduler {request.scheduler}[/dim]"
                  if request.scheduler else
                  f"[dim]starting a Dask LocalCluster of {request.jobs} worker processes[/dim]")
    with dask_client(jobs=request.jobs, scheduler=request.scheduler,
                     log_level=logging.INFO if debug else logging.ERROR) as client:
        runner = OnDask(client, level)
        if runner.threads_per_worker > 1 and not quiet:
            out.print(f"[yellow]note:[/yellow] workers have up to {runner.threads_per_worker} "
                      "threads but run one drill at a time (drills are not thread-safe); "
                      "start them with `dask worker --nthreads 1 --nworkers N`")
        yield runner


def _sweep(request: SweepRequest, *, as_json: bool, quiet: bool) -> int:
    from rich.markup import escape

    from stackdrill.cli.render import console
    from stackdrill.fuzz.results import ResultStore, shown
    from stackdrill.fuzz.version import code_version

    out = console()
    quiet = quiet or as_json  # stdout is the JSON document
    version = code_version()
    store = ResultStore(request.results, version.key, dirty=version.dirty)
    stored = store.stored_seeds(request.start, request.stop)
    todo = [s for s in range(request.start, request.stop) if s not in stored]
    if not quiet:
        out.print(f"seeds {request.start}:{request.stop} on {version.describe()}: "
                  f"{len(stored)} stored, {len(todo)} to run; results in "
                  f"{escape(shown(request.results))}", soft_wrap=True)
    tally = Tally()
    try:
        with _runner(request, out, quiet) if todo else nullcontext(None) as runner:
            if runner is not None:  # nothing left: no cluster to start
                _drive(runner, todo, store, version, tally, out, quiet=quiet)
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C; SIGTERM/SIGHUP (lifetime)
        out.print(f"interrupted: {tally.ran} seeds stored this run, "
                  f"{len(todo) - tally.ran} left; resume with: {escape(request.command())}",
                  soft_wrap=True)
        if isinstance(stop, SystemExit):
            raise
        return 130
    return _summary(request, store, version, tally, out, as_json=as_json)


def _drive(runner: Runner, todo: list[int], store: ResultStore, version: CodeVersion,
           tally: Tally, out: Console, *, quiet: bool) -> None:
    """Run the seeds, storing (committing) each result the moment it arrives."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    show = not quiet and out.is_terminal
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]} seeds/s  {task.fields[failed]} failed"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=out,
                        disable=not show)
    with progress if show else nullcontext():
        task = progress.add_task(f"fuzz ({runner.workers} worker"
                                 f"{'s' if runner.workers > 1 else ''})", total=len(todo),
                                 rate="—", failed=0)
        try:
            for result in runner.run(todo):
                if result.version != version.key:
                    raise InfrastructureError(
                        f"worker {result.worker} runs {result.version}, this client "
                        f"{version.key}: every worker must run the same commit")
                store.add(result)
                tally.ran += 1
                if result.verdict != "pass":
                    tally.failed.append(result)
                    if not quiet:
                        out.print(f"[red]FAIL[/red] seed {result.seed} ({result.topology}): "
                                  f"{escape(', '.join(result.failed))}", soft_wrap=True)
                elapsed = progress.tasks[0].elapsed or 0.0
                progress.update(task, advance=1, failed=len(tally.failed),
                                rate=f"{tally.ran / elapsed:.1f}" if elapsed else "—")
        except (InfrastructureError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a lost worker, a crash outside the drill: no verdict
            raise InfrastructureError(f"sweep stopped: {type(exc).__name__}: {exc} "
                                      f"({tally.ran} seeds stored this run)") from exc


def _summary(request: SweepRequest, store: ResultStore, version: CodeVersion, tally: Tally,
             out: Console, *, as_json: bool) -> int:
    from rich.markup import escape

    from stackdrill.fuzz.results import shown
    from stackdrill.fuzz.version import pinned_command

    everything = list(store.results(request.start, request.stop))
    failing = [r for r in everything if r.verdict != "pass"]
    if as_json:
        click.echo(json.dumps({str(r.seed): {"topology": r.topology, "failed": list(r.failed),
                                             "detail": r.details} for r in failing}, indent=1))
        return 1 if failing else 0
    colour = "red" if failing else "green"
    out.print(f"[bold {colour}]{'FAIL' if failing else 'PASS'}[/bold {colour}] seeds "
              f"{request.start}:{request.stop} on {version.describe()}: "
              f"{len(everything)} stored ({tally.ran} run now), {len(failing)} failing",
              soft_wrap=True)
    for result in failing[:MAX_LISTED]:
        out.print(f"  seed {result.seed}: {escape(', '.join(result.failed))}\n    reproduce: "
                  f"{escape(pinned_command(result.seed, version))}", soft_wrap=True)
    if len(failing) > MAX_LISTED:
        out.print(f"  … and {len(failing) - MAX_LISTED} more in {escape(shown(request.results))}")
    return 1 if failing else 0
