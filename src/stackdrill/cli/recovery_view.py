"""Terminal views of the recovery engine: the plan before acting, the result table after."""

from __future__ import annotations

from rich.table import Table

from stackdrill.cli.render import console
from stackdrill.recovery import RecoveryConfig, RecoveryEngine, RecoveryResult
from stackdrill.session import LabSession


def print_plan(session: LabSession, *, parallel: int, assume_fenced: bool) -> None:
    """What the engine would do now for the hosts that look failed (no action taken)."""
    lab = session.lab
    config = RecoveryConfig(parallel=parallel, assume_fenced=assume_fenced)
    url = f"sqlite:///{session.workdir / 'plan.sqlite'}"
    engine = RecoveryEngine(session.topology, lab.drivers, lab.clock, url, config)
    engine.seed_inventory()
    now = lab.clock.now()
    failed = []
    for host in session.topology.hosts:
        health = lab.drivers.compute.health(host.name)
        silent = health.last_heartbeat is not None and \
            now - health.last_heartbeat > config.grace_s
        if silent or health.power.value in ("off", "hung"):
            failed.append(host.name)
    out = console()
    if not failed:
        out.print(f"[green]no failed host at {now:.1f}s: nothing to recover[/green]")
        return
    plan = engine.plan(failed)
    table = Table(title=f"plan at {now:.1f}s for {', '.join(failed)} (dry run)",
                  title_justify="left")
    for col in ("instance", "from", "to", "attach"):
        table.add_column(col)
    for p in plan.placements:
        table.add_row(p.instance, p.source, p.target, str(p.mode or "—"))
    for u in plan.unplaceable:
        table.add_row(u.instance, u.source, "[red]—[/red]", f"[red]cannot recover: {u.reason}")
    out.print(table)


def print_result(result: RecoveryResult) -> None:
    table = Table(title="recovery result", title_justify="left")
    for col in ("instance", "before", "after", "state", "attach", "reason"):
        table.add_column(col)
    for o in result.instances:
        colour = "green" if o.state.value in ("recovered", "running", "resumed") else "red"
        table.add_row(o.name, o.host_before, o.host_after or "—",
                      f"[{colour}]{o.state.value}[/{colour}]", o.attach_mode or "—", o.reason)
    out = console()
    out.print(table)
    for host, why in result.blocked_hosts.items():
        out.print(f"[red]{host} stays fenced / blocks recovery: {why}[/red]")
