"""`stackdrill status` and `verify`: look at a named lab without changing it (under its
lock all the same, so a look never lands in the middle of another command)."""

from __future__ import annotations

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


def _show_kept(name: str, record: LabRecord | None) -> bool:
    """Describe a kept lab from what its backend knows (a kept lab is not reopened: its
    owner process is gone); False when no backend kept a lab of that name."""
    backends = {b for b, n in kept_elsewhere() if n == name}
    if record is not None:
        backends.add(record.backend)
    out = console()
    if record is not None and record.kept_from is not None:
        out.print(escape(f"lab {name} backend={record.backend} seed={record.seed}, kept by "
                         f"`stackdrill run --keep {record.kept_from.drill}`"))
    texts = [t for b in sorted(backends) if (t := backend_class(b).describe_kept(name))]
    for text in texts:
        out.print(escape(text))
    if record is not None and not texts:
        out.print(f"backend {record.backend!r} cannot describe a kept lab")
    if texts or record is not None:
        out.print(escape(f"remove it with `stackdrill down --lab {name}`"))
    return bool(texts) or record is not None


def _show(record: LabRecord, session: LabSession) -> None:
    obs = session.observe()
    out = console()
    out.print(f"lab [bold]{record.name}[/bold] backend={record.backend} seed={record.seed} "
              f"time={obs.time:.1f}s")
    held = session.where()
    if held is not None:
        out.print(escape(held))
    hosts = Table(title="hosts", title_justify="left")
    for col in ("host", "power", "instances running"):
        hosts.add_column(col)
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


@click.command(epilog="Examples:\n  stackdrill status --lab demo\n  stackdrill status --all")
@LAB_OPTION
@click.option("--all", "everything", is_flag=True,
              help="List every lab on this machine (as `stackdrill list labs`).")
def status(lab_name: str, everything: bool) -> None:
    """Show a lab: lab time, hosts' power, where each instance runs, DRBD, faults in force."""
    if everything:
        from stackdrill.cli.listing import lab_rows, print_labs

        print_labs(lab_rows())
        return
    with labstore.locked(lab_name):
        record = labstore.load(lab_name) if labstore.exists(lab_name) else None
        if record is None or record.kept_from is not None:
            if _show_kept(lab_name, record):
                return
            labstore.load(lab_name)  # says: no lab of that name
        assert record is not None
        with open_session(record) as session:
            _show(record, session)


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
