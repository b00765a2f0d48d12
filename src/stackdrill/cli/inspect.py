"""`stackdrill status` and `verify`: look at a named lab without changing it (under its
lock all the same, so a look never lands in the middle of another command)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import click
from rich.markup import escape
from rich.table import Table

from stackdrill.backends import backend_class
from stackdrill.checks import CheckContext, run_checks, tally_writes, verify_now
from stackdrill.cli import labstore
from stackdrill.cli.kept import kept_elsewhere
from stackdrill.cli.lab import LAB_OPTION, open_session
from stackdrill.cli.labstore import LabRecord
from stackdrill.cli.render import console
from stackdrill.cli.session import LabSession
from stackdrill.faults import describe


@dataclass(frozen=True)
class HostRow:
    host: str
    power: str
    instances: tuple[str, ...]  # instances with a copy running on it


@dataclass(frozen=True)
class DrbdRow:
    resource: str
    node: str
    role: str
    disk: str
    connection: str
    out_of_sync_kb: int


@dataclass(frozen=True)
class LabStatus:
    """What `status` shows of a lab, as a table or (`--json`) one JSON object."""

    lab: str
    backend: str
    seed: int
    time_s: float | None  # None: a kept lab, described by its backend, not reopened
    held_by: str | None
    hosts: tuple[HostRow, ...] = ()
    drbd: tuple[DrbdRow, ...] = ()
    faults_in_force: dict[str, str] = field(default_factory=dict)  # fault id -> fault
    kept_from: str | None = None  # the drill `run --keep` left it from
    described: tuple[str, ...] = ()  # a kept lab: what its backend says about it


def _kept_status(name: str, record: LabRecord | None) -> LabStatus | None:
    """A kept lab from what its backend knows (a kept lab is not reopened: its owner
    process is gone); None when no backend kept a lab of that name."""
    backends = {b for b, n in kept_elsewhere() if n == name}
    if record is not None:
        backends.add(record.backend)
    texts = tuple(t for b in sorted(backends) if (t := backend_class(b).describe_kept(name)))
    if not texts and record is None:
        return None
    if record is not None and not texts:
        texts = (f"backend {record.backend!r} cannot describe a kept lab",)
    return LabStatus(lab=name, backend=record.backend if record else ",".join(sorted(backends)),
                     seed=record.seed if record else 0, time_s=None,
                     held_by="kept by `run --keep`",
                     kept_from=record.kept_from.drill if record and record.kept_from else None,
                     described=texts)


def _live_status(record: LabRecord, session: LabSession) -> LabStatus:
    obs = session.observe()
    placed: dict[str, list[str]] = {}
    for inst, where in obs.running.items():
        for host in where:
            placed.setdefault(host, []).append(inst)
    return LabStatus(
        lab=record.name, backend=record.backend, seed=record.seed, time_s=obs.time,
        held_by=session.where(),
        hosts=tuple(HostRow(host, power.value, tuple(sorted(placed.get(host, []))))
                    for host, power in obs.power.items()),
        drbd=tuple(DrbdRow(res, node, st.role, st.disk, st.connection, st.out_of_sync_kb)
                   for res, nodes in obs.drbd.items() for node, st in nodes.items()),
        faults_in_force={fid: describe(fault)
                         for fid, fault in record.faults_in_force().items()})


def _print_kept(status: LabStatus) -> None:
    out = console()
    if status.kept_from is not None:
        out.print(escape(f"lab {status.lab} backend={status.backend} seed={status.seed}, kept "
                         f"by `stackdrill run --keep {status.kept_from}`"))
    for text in status.described:
        out.print(escape(text))
    out.print(escape(f"remove it with `stackdrill down --lab {status.lab}`"))


def _print(status: LabStatus) -> None:
    if status.time_s is None:
        _print_kept(status)
        return
    out = console()
    out.print(f"lab [bold]{escape(status.lab)}[/bold] backend={status.backend} "
              f"seed={status.seed} time={status.time_s:.1f}s")
    if status.held_by is not None:
        out.print(escape(status.held_by))
    hosts = Table(title="hosts", title_justify="left")
    for col in ("host", "power", "instances running"):
        hosts.add_column(col)
    for h in status.hosts:
        hosts.add_row(h.host, h.power, ", ".join(h.instances) or "—")
    out.print(hosts)
    for res in dict.fromkeys(d.resource for d in status.drbd):
        table = Table(title=f"drbd {res}", title_justify="left")
        for col in ("node", "role", "disk", "connection", "out of sync KiB"):
            table.add_column(col)
        for d in status.drbd:
            if d.resource == res:
                table.add_row(d.node, d.role, d.disk, d.connection, str(d.out_of_sync_kb))
        out.print(table)
    out.print("faults in force: " + (", ".join(
        f"{fid}: {text}" for fid, text in status.faults_in_force.items()) or "none"))


def _lab_status(lab_name: str) -> LabStatus:
    with labstore.locked(lab_name):
        record = labstore.load(lab_name) if labstore.exists(lab_name) else None
        if record is None or record.kept_from is not None:
            kept = _kept_status(lab_name, record)
            if kept is not None:
                return kept
            labstore.load(lab_name)  # says: no lab of that name
        assert record is not None
        with open_session(record) as session:
            return _live_status(record, session)


@click.command(epilog="""\b
Examples:
  stackdrill status --lab demo
  stackdrill status --lab demo --json
  stackdrill status --all""")
@LAB_OPTION
@click.option("--all", "everything", is_flag=True,
              help="List every lab on this machine (as `stackdrill list labs`).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (with --all: array).")
def status(lab_name: str, everything: bool, as_json: bool) -> None:
    """Show a lab: lab time, hosts' power, where each instance runs, DRBD, faults in force."""
    if everything:
        from stackdrill.cli.listing import emit, lab_rows, labs_table

        emit(lab_rows(), as_json, labs_table)
        return
    shown = _lab_status(lab_name)
    if as_json:
        click.echo(json.dumps(asdict(shown), indent=2))
    else:
        _print(shown)


@click.command(epilog="Example:\n  stackdrill verify --lab demo")
@LAB_OPTION
def verify(lab_name: str) -> None:
    """Check the lab now with the drill judge's checkers: every instance runs exactly once,
    no acknowledged write is lost, every volume group is consistent on the hosts that see
    it (where the backend observes LVM). Exit 1 when a check fails or cannot run."""
    with labstore.locked(lab_name):
        record = labstore.load(lab_name)
        with open_session(record) as session:
            observes_lvm = "lvm" in backend_class(record.backend).capabilities.features
            context = CheckContext(evidence=session.evidence(),
                                   topology=session.topology, backend=record.backend)
            results = run_checks(verify_now(session.topology, observes_lvm=observes_lvm),
                                 context)
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
