"""`stackdrill up|inject|heal|wait|recover|down`: a lab that stays up between commands,
for an engineer reproducing a failure by hand (`status` and `verify` look at it).

Each command gives the lab one schedule step (the `Step` a drill's schedule holds) and
the session plays it through the drill player; `wait` only moves the lab's time. Every
command holds the lab's lock from reading its record to writing it back, so commands on
one lab run one after the other and none is lost."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape

from stackdrill.api.commands import COMMAND_TOOLS, command_summary
from stackdrill.backends import REGISTRY, backend_class, lifetime
from stackdrill.cli import labstore
from stackdrill.cli.args import (
    LAB_SECONDS,
    check_command,
    check_fault,
    parse_command,
    parse_fault,
)
from stackdrill.cli.complete import complete_backend
from stackdrill.cli.kept import kept_elsewhere
from stackdrill.cli.labstore import LabRecord
from stackdrill.cli.render import console
from stackdrill.cli.session import LabSession, topology_of
from stackdrill.cli.session import open_session as _open_session
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.drill.support import topology_unsupported
from stackdrill.errors import LabStateError, StackdrillError, UnsupportedError
from stackdrill.faults import FAULT_KINDS, describe
from stackdrill.recovery import Profile, RecoveryConfig, RecoveryEvent
from stackdrill.recovery.dburl import ENV, inventory_url
from stackdrill.topology import load_topology


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Mute a logger while earlier steps are replayed: a past recovery's warnings (fencing,
    --assume-fenced) belong to the command that ran it, not to every later command."""
    log = logging.getLogger(logger)
    old = log.level
    log.setLevel(logging.CRITICAL + 1)  # children inherit it (`disabled` would not reach them)
    try:
        yield
    finally:
        log.setLevel(old)


@contextmanager
def open_session(record: LabRecord, inventory: str | None = None) -> Iterator[LabSession]:
    target = inventory_url(inventory)
    with _quiet("stackdrill.recovery"), _open_session(record, target) as session:
        yield session


LAB_OPTION = click.option("--lab", "lab_name", default="default", show_default=True,
                          help="Name of the lab.")
INVENTORY_OPTION = click.option(
    "--inventory", metavar="URL", default=None,
    help=f"The recovery engine's inventory database (SQLAlchemy URL, e.g. "
         f"postgresql://user@host/db; each run gets its own schema)  [default: "
         f"${ENV}, else a SQLite file per run]")


@click.command(epilog="""\b
Examples:
  stackdrill up lab/topologies/nova-drbd.yaml --lab demo
  stackdrill up lab/topologies/two-node-clvm.yaml --lab pair --seed 3""")
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@LAB_OPTION
@click.option("--backend", default="sim", show_default=True, shell_complete=complete_backend,
              help=f"{', '.join(sorted(REGISTRY))}")
@click.option("--seed", type=int, default=1, show_default=True)
@INVENTORY_OPTION
def up(topology: Path, lab_name: str, backend: str, seed: int, inventory: str | None) -> None:
    """Bring up a lab from a TOPOLOGY file and keep it for later commands."""
    labstore.check_name(lab_name)
    target = inventory_url(inventory)
    topo = load_topology(topology)
    cls = backend_class(backend)
    problems = topology_unsupported(topo, backend, cls.capabilities)
    if problems:
        raise UnsupportedError("\n".join(f"{topology}: {p}" for p in problems))
    reason = cls.available()
    if reason is not None:
        raise LabStateError(f"backend {backend!r} cannot run here: {reason}")
    with labstore.locked(lab_name):
        if labstore.exists(lab_name):
            raise LabStateError(f"lab {lab_name!r} already exists (stackdrill down --lab "
                                f"{lab_name})")
        record = LabRecord(name=lab_name, backend=backend, topology=str(topology.resolve()),
                           seed=seed, created_at=time.time())
        if cls.capabilities.in_process:
            with open_session(record, inventory) as session:
                labstore.save(session.record)
        else:
            target.check()
            _start_keeper(record, inventory)
    console().print(f"lab [bold]{lab_name}[/bold] is up on {backend}: {len(topo.hosts)} "
                    f"hosts, {len(topo.instances)} instances (topology {topo.name})")


def _start_keeper(record: LabRecord, inventory: str | None) -> None:
    """A real lab: its keeper brings it up and holds it (the record first, so that a crash
    of this command leaves the lab findable by `down`)."""
    from stackdrill.cli.keeper import client

    labstore.save(record)
    out = console()
    try:
        client.start(record, progress=lambda line: out.print(f"[dim]{escape(line)}[/dim]"),
                     inventory=inventory)
    except BaseException:
        labstore.remove(record.name)
        raise


@click.command(epilog="""\b
Examples:
  stackdrill inject host_crash host=cmp1 --lab demo
  stackdrill inject partition 'groups=sto1|sto2' network=repl --lab demo
  stackdrill inject packet_loss host=cmp2 network=storage probability=0.3 --lab demo""")
@click.argument("kind", type=click.Choice(FAULT_KINDS))
@click.argument("params", nargs=-1)
@LAB_OPTION
def inject(kind: str, params: tuple[str, ...], lab_name: str) -> None:
    """Inject a fault of KIND with key=value PARAMS now; prints its id for `heal`.
    A fault naming a host, disk, network or overlay the lab does not have is refused.
    Quote a value holding `|` (groups, pairs) for the shell: 'groups=a,b|c'.
    `stackdrill list faults` shows every KIND and its PARAMS."""
    fault = parse_fault(kind, params)
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        check_fault(fault, topology_of(record))
        fault_id = record.next_fault_id()
        with open_session(record) as session:
            step = Step(at=session.now(), id=fault_id, inject=fault)
            labstore.save(session.apply(step))
    console().print(f"{fault_id}: {describe(fault)} at {step.at:.1f}s")


@click.command("exec", epilog="""\b
Examples:
  stackdrill exec drbdadm host=sto2 op=primary resource=r0 --lab demo
  stackdrill exec lvm host=sto1 op=lvcreate vg=cinder-volumes lv=scratch extents=8 --lab demo
  stackdrill exec cluster op=stop host=sto2 cluster=storage --lab demo""")
@click.argument("tool", type=click.Choice(COMMAND_TOOLS))
@click.argument("params", nargs=-1)
@LAB_OPTION
def exec_cmd(tool: str, params: tuple[str, ...], lab_name: str) -> None:
    """Run an operator command with key=value PARAMS on the lab now, as a drill's `run`
    step would (the same fields), and print what the tool said. Exit 1 when it failed."""
    command = parse_command(tool, params)
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        check_command(command, topology_of(record))
        with open_session(record) as session:
            labstore.save(session.apply(Step(at=session.now(), run=command)))
            ran = session.last_command()
    if ran is None:
        raise LabStateError(f"lab {lab_name!r}: the command left no result")
    label, result = ran
    mark = "[green]ok[/green]" if result.ok else "[red]failed[/red]"
    console().print(f"{label}: {escape(command_summary(command))} {mark} at "
                    f"{result.started:.1f}s")
    for text in (result.command, result.detail):
        if text:
            console().print(escape(text), highlight=False, soft_wrap=True)
    if not result.ok:
        raise SystemExit(1)


@click.command(epilog="Examples:\n  stackdrill heal f1 --lab demo\n  stackdrill heal all")
@click.argument("fault_id")
@LAB_OPTION
def heal(fault_id: str, lab_name: str) -> None:
    """Heal the fault FAULT_ID (as printed by inject), or `all` of them."""
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        active = record.faults_in_force()
        ids = list(active) if fault_id == "all" else [fault_id]
        for fid in ids:
            if fid not in active:
                raise LabStateError(f"no fault {fid[:40]!r} in force in lab {lab_name!r} "
                                    f"(in force: {', '.join(active) or 'none'})")
        with open_session(record) as session:
            for fid in ids:
                labstore.save(session.apply(Step(at=session.now(), heal=fid)))
                console().print(f"healed {fid}: {describe(active[fid])}")


@click.command(epilog="Example:\n  stackdrill wait 60 --lab demo",
               context_settings={"ignore_unknown_options": True})  # `wait -1`: a range error
@click.argument("seconds", type=LAB_SECONDS)
@LAB_OPTION
def wait(seconds: float, lab_name: str) -> None:
    """Let SECONDS of lab time pass (0 to 86400; the simulator runs its events meanwhile)."""
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        with open_session(record) as session:
            labstore.save(session.wait(seconds))
            console().print(f"lab time is now {session.now():.1f}s")


PARALLEL_HELP = (f"Cap on instances recovered at once  [default: the profile's: none, "
                 f"the lab's capacity decides ({RecoveryConfig().describe_parallelism()}); "
                 f"masakari: no cap either, {RecoveryConfig.masakari().per_failed_host} per "
                 f"failed host]")


@click.command(epilog="""\b
Examples:
  stackdrill recover --lab demo --dry-run
  stackdrill recover --lab demo --parallel 8
  stackdrill recover --lab demo --assume-fenced   # you pulled the plug yourself""")
@LAB_OPTION
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@click.option("--parallel", type=click.IntRange(1, 256), default=None, help=PARALLEL_HELP)
@click.option("--assume-fenced", is_flag=True,
              help="Trust that failed hosts are off without the power driver's word. Dangerous.")
@click.option("--profile", type=click.Choice([p.value for p in Profile]),
              default=RecoveryConfig.profile.value, show_default=True)
@INVENTORY_OPTION
def recover(lab_name: str, dry_run: bool, parallel: int | None, assume_fenced: bool,
            profile: str, inventory: str | None) -> None:
    """Run the recovery engine: detect failed hosts, fence them, plan, evacuate, verify."""
    from stackdrill.cli.recovery_view import print_plan, print_result

    spec = RecoverSpec(parallel=parallel, assume_fenced=assume_fenced, profile=Profile(profile))
    out = console()
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        if inventory and not backend_class(record.backend).capabilities.in_process:
            raise LabStateError(f"lab {lab_name!r} is kept by its keeper, which chose its "
                                "inventory at `up` (give --inventory there)")
        with open_session(record, inventory) as session:
            if dry_run:
                print_plan(session, spec)
                return
            if session.idle(spec):
                out.print(f"[green]nothing to recover at {session.now():.1f}s: "
                          "every compute host heartbeats and every instance runs[/green]")
                return

            def progress(event: RecoveryEvent) -> None:
                out.print(f"[dim][{event.time:8.1f}s][/dim] {event.message}", highlight=False)

            step = Step(at=session.now(), recover=spec)
            labstore.save(session.apply(step, progress=progress))
            result = session.last_recovery
    if result is not None:
        print_result(result)
        if not result.ok:
            raise SystemExit(1)


def _down_one(name: str, *, must_exist: bool = False) -> None:
    """Tear down the lab called `name`: the one recorded here and any kept on this machine
    by `run --keep` from elsewhere (slots are machine-wide, records per lab store)."""
    from stackdrill.cli.keeper import client

    with labstore.locked(name):
        stopped = client.stop(name)  # a kept real lab: its keeper tears it down
        backends = {b for b, n in kept_elsewhere() if n == name}
        recorded = labstore.backend_of(name)
        if recorded is not None:
            backends.add(recorded)
        if must_exist and not stopped and not backends and not labstore.exists(name):
            raise LabStateError(f"no lab named {name!r}")
        for backend in sorted(backends):
            backend_class(backend).teardown(name)
        labstore.remove(name)
    console().print(f"lab {name} is down")


def _leftovers() -> None:
    """Leftovers of crashed labs on every backend and scratch directories of dead runs."""
    out = console()
    for backend in sorted(REGISTRY):
        try:
            removed = backend_class(backend).cleanup_all()
        except (ImportError, OSError, StackdrillError) as exc:
            out.print(f"{backend}: cannot look for leftovers here: {exc}")
            continue
        if removed:
            out.print(f"{backend}: removed leftovers {', '.join(removed)}")
    scratch = lifetime.remove_dead_scratch()
    if scratch:
        out.print(f"removed scratch directories of dead runs: {', '.join(scratch)}")


@click.command(epilog="Examples:\n  stackdrill down --lab demo\n  stackdrill down --all")
@LAB_OPTION
@click.option("--all", "everything", is_flag=True,
              help="Remove every stackdrill lab and the leftovers of crashed ones "
                   "(only resources stackdrill created), except labs kept by `run --keep`.")
@click.option("--include-kept", is_flag=True,
              help="With --all: also the labs kept on purpose by `run --keep`.")
def down(lab_name: str, everything: bool, include_kept: bool) -> None:
    """Tear a lab down and forget it (also one whose record this version cannot read, and
    one kept by `run --keep`). `--all` is the cleanup after crashes that CI and scripts
    run: it leaves kept labs, which someone left standing on purpose."""
    if not everything:
        if include_kept:
            raise click.UsageError("--include-kept goes with --all")
        _down_one(lab_name, must_exist=True)
        return
    kept = {n for _b, n in kept_elsewhere()}
    for name in labstore.names():
        if include_kept or not (name in kept or _kept_record(name)):
            _down_one(name)
    if include_kept:
        for name in sorted(kept - set(labstore.names())):
            _down_one(name)
    _leftovers()


def _kept_record(name: str) -> bool:
    try:
        return labstore.load(name).kept_from is not None
    except LabStateError:
        return False  # an unreadable record is a leftover
