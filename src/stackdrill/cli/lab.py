"""`stackdrill up|status|inject|heal|wait|recover|verify|down`: a lab that stays up between
commands, for an engineer reproducing a failure by hand.

Each command gives the lab one schedule step (the `Step` a drill's schedule holds) and
the session plays it through the drill player; `wait` only moves the lab's time."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from stackdrill.backends import REGISTRY, backend_class
from stackdrill.checks import CheckContext, Evidence, run_checks, tally_writes, verify_now
from stackdrill.cli import labstore
from stackdrill.cli.labstore import LabRecord
from stackdrill.cli.render import console
from stackdrill.cli.session import LabSession
from stackdrill.cli.session import open_session as _open_session
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.errors import InputError, LabStateError, Problem, StackdrillError
from stackdrill.faults import FAULT_KINDS, Fault, FaultAdapter, describe
from stackdrill.recovery import Profile, RecoveryConfig, RecoveryEvent
from stackdrill.topology import load_topology
from stackdrill.yamlio import problems_from_validation


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


def open_session(record: LabRecord) -> tuple[LabSession, tempfile.TemporaryDirectory[str]]:
    with _quiet("stackdrill.recovery"):
        return _open_session(record)


LAB_OPTION = click.option("--lab", "lab_name", default="default", show_default=True,
                          help="Name of the lab.")


@click.command(epilog="""\b
Examples:
  stackdrill up lab/topologies/nova-drbd.yaml --lab demo
  stackdrill up lab/topologies/two-node-clvm.yaml --lab pair --seed 3""")
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@LAB_OPTION
@click.option("--backend", default="sim", show_default=True,
              help=f"{', '.join(sorted(REGISTRY))}")
@click.option("--seed", type=int, default=1, show_default=True)
def up(topology: Path, lab_name: str, backend: str, seed: int) -> None:
    """Bring up a lab from a TOPOLOGY file and keep it for later commands."""
    topo = load_topology(topology)
    if labstore.exists(lab_name):
        raise LabStateError(f"lab {lab_name!r} already exists (stackdrill down --lab "
                            f"{lab_name})")
    cls = backend_class(backend)
    reason = cls.available()
    if reason is not None:
        raise LabStateError(f"backend {backend!r} cannot run here: {reason}")
    record = LabRecord(name=lab_name, backend=backend, topology=str(topology.resolve()),
                       seed=seed)
    session, tmp = open_session(record)
    with tmp:
        labstore.save(session.record)
        console().print(f"lab [bold]{lab_name}[/bold] is up on {backend}: {len(topo.hosts)} "
                        f"hosts, {len(topo.instances)} instances (topology {topo.name})")


@click.command(epilog="Example:\n  stackdrill status --lab demo")
@LAB_OPTION
def status(lab_name: str) -> None:
    """Show a lab: lab time, hosts' power, where each instance runs, DRBD, faults in force."""
    record = labstore.load(lab_name)
    session, tmp = open_session(record)
    with tmp:
        obs = session.lab.observe()
        out = console()
        out.print(f"lab [bold]{lab_name}[/bold] backend={record.backend} seed={record.seed} "
                  f"time={obs.time:.1f}s")
        hosts = Table(title="hosts", title_justify="left")
        hosts.add_column("host")
        hosts.add_column("power")
        hosts.add_column("instances running")
        placed: dict[str, list[str]] = {}
        for inst, where in obs.running.items():
            for host in where:
                placed.setdefault(host, []).append(inst)
        for host, power in obs.power.items():
            hosts.add_row(host, power.value, ", ".join(sorted(placed.get(host, []))) or "—")
        out.print(hosts)
        for res, nodes in obs.drbd.items():
            table = Table(title=f"drbd {res}", title_justify="left")
            for col in ("node", "role", "disk", "connection", "out of sync KiB"):
                table.add_column(col)
            for node, st in nodes.items():
                table.add_row(node, st.role, st.disk, st.connection, str(st.out_of_sync_kb))
            out.print(table)
        faults = record.faults_in_force()
        out.print("faults in force: " + (", ".join(
            f"{fid}: {describe(fault)}" for fid, fault in faults.items()) or "none"))


def parse_fault(kind: str, params: tuple[str, ...]) -> Fault:
    """host_crash host=cmp1 -> HostCrash(host="cmp1"); groups=a,b|c."""
    fault: dict[str, Any] = {"kind": kind}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep:
            raise InputError("command line", [Problem(param, "expected key=value")])
        if key == "groups":
            fault[key] = [group.split(",") for group in value.split("|")]
        else:
            fault[key] = value
    try:
        return FaultAdapter.validate_python(fault)
    except ValidationError as exc:
        raise InputError(f"fault {kind}", problems_from_validation(exc)) from None


@click.command(epilog="""\b
Examples:
  stackdrill inject host_crash host=cmp1 --lab demo
  stackdrill inject partition groups=sto1|sto2 network=repl --lab demo
  stackdrill inject packet_loss host=cmp2 network=storage probability=0.3""")
@click.argument("kind", type=click.Choice(FAULT_KINDS))
@click.argument("params", nargs=-1)
@LAB_OPTION
def inject(kind: str, params: tuple[str, ...], lab_name: str) -> None:
    """Inject a fault of KIND with key=value PARAMS now; prints its id for `heal`."""
    fault = parse_fault(kind, params)
    record = labstore.load(lab_name)
    fault_id = record.next_fault_id()
    session, tmp = open_session(record)
    with tmp:
        step = Step(at=session.lab.clock.now(), id=fault_id, inject=fault)
        labstore.save(session.apply(step))
    console().print(f"{fault_id}: {describe(fault)} at {step.at:.1f}s")


@click.command(epilog="Examples:\n  stackdrill heal f1 --lab demo\n  stackdrill heal all")
@click.argument("fault_id")
@LAB_OPTION
def heal(fault_id: str, lab_name: str) -> None:
    """Heal the fault FAULT_ID (as printed by inject), or `all` of them."""
    record = labstore.load(lab_name)
    active = record.faults_in_force()
    ids = list(active) if fault_id == "all" else [fault_id]
    for fid in ids:
        if fid not in active:
            raise LabStateError(f"no fault {fid!r} in force in lab {lab_name!r} "
                                f"(in force: {', '.join(active) or 'none'})")
    session, tmp = open_session(record)
    with tmp:
        for fid in ids:
            labstore.save(session.apply(Step(at=session.lab.clock.now(), heal=fid)))
            console().print(f"healed {fid}: {describe(active[fid])}")


@click.command(epilog="Example:\n  stackdrill wait 60 --lab demo")
@click.argument("seconds", type=click.FloatRange(min=0, max=86400))
@LAB_OPTION
def wait(seconds: float, lab_name: str) -> None:
    """Let SECONDS of lab time pass (the simulator runs its events meanwhile)."""
    record = labstore.load(lab_name)
    session, tmp = open_session(record)
    with tmp:
        labstore.save(session.wait(seconds))
        console().print(f"lab time is now {session.lab.clock.now():.1f}s")


PARALLEL_HELP = (f"Instances recovered at once  [default: the profile's: "
                 f"{RecoveryConfig().parallel}, masakari {RecoveryConfig.masakari().parallel}]")


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
def recover(lab_name: str, dry_run: bool, parallel: int | None, assume_fenced: bool,
            profile: str) -> None:
    """Run the recovery engine: detect failed hosts, fence them, plan, evacuate, verify."""
    from stackdrill.cli.recovery_view import nothing_to_recover, print_plan, print_result

    spec = RecoverSpec(parallel=parallel, assume_fenced=assume_fenced, profile=Profile(profile))
    record = labstore.load(lab_name)
    session, tmp = open_session(record)
    out = console()
    with tmp:
        if dry_run:
            print_plan(session, spec)
            return
        if nothing_to_recover(session, spec):
            out.print(f"[green]nothing to recover at {session.lab.clock.now():.1f}s: every "
                      "compute host heartbeats and every instance runs[/green]")
            return

        def progress(event: RecoveryEvent) -> None:
            out.print(f"[dim][{event.time:8.1f}s][/dim] {event.message}", highlight=False)

        step = Step(at=session.lab.clock.now(), recover=spec)
        labstore.save(session.apply(step, progress=progress))
        if session.last_recovery is not None:
            print_result(session.last_recovery)
            if not session.last_recovery.ok:
                raise SystemExit(1)


@click.command(epilog="Example:\n  stackdrill verify --lab demo")
@LAB_OPTION
def verify(lab_name: str) -> None:
    """Check the lab now with the drill judge's checkers: every instance runs exactly once,
    no acknowledged write is lost, every volume group is consistent on the hosts that see
    it (where the backend observes LVM). Exit 1 when a check fails or cannot run."""
    record = labstore.load(lab_name)
    session, tmp = open_session(record)
    with tmp:
        observes_lvm = "lvm" in backend_class(record.backend).capabilities.features
        context = CheckContext(evidence=Evidence.collect(session.lab),
                               topology=session.topology, backend=record.backend)
        results = run_checks(verify_now(session.topology, observes_lvm=observes_lvm), context)
        evidence = context.evidence
        table = Table(title=f"verify {lab_name} at {evidence.observation.time:.1f}s",
                      title_justify="left")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        for r in results:
            mark = "[green]ok[/green]" if r.ok else "[red]FAIL[/red]"
            table.add_row(escape(r.name), mark, escape(r.detail))  # 'lvm_consistent[vg]'
        out = console()
        out.print(table)
        if not observes_lvm and session.topology.volume_groups:
            out.print(f"LVM not checked: backend {record.backend!r} cannot observe it")
        tallies = tally_writes(evidence.history, evidence.stored)
        lost = sum(t.lost for t in tallies.values())
        out.print(f"{len(evidence.history)} writes, {lost} acknowledged write(s) lost")
        if not all(r.ok for r in results):
            raise SystemExit(1)


@click.command(epilog="Examples:\n  stackdrill down --lab demo\n  stackdrill down --all")
@LAB_OPTION
@click.option("--all", "everything", is_flag=True,
              help="Remove every stackdrill lab and the leftovers of crashed ones "
                   "(only resources stackdrill created).")
def down(lab_name: str, everything: bool) -> None:
    """Tear a lab down and forget it (also one whose record this version cannot read)."""
    names = labstore.names() if everything else [lab_name]
    if not everything and not labstore.exists(lab_name):
        raise LabStateError(f"no lab named {lab_name!r}")
    for name in names:
        backend = labstore.backend_of(name)
        if backend is not None:
            backend_class(backend).teardown(name)
        labstore.remove(name)
        console().print(f"lab {name} is down")
    if everything:
        for backend in sorted(REGISTRY):
            try:
                removed = backend_class(backend).cleanup_all()
            except (ImportError, OSError, StackdrillError) as exc:
                console().print(f"{backend}: cannot look for leftovers here: {exc}")
                continue
            if removed:
                console().print(f"{backend}: removed leftovers {', '.join(removed)}")
