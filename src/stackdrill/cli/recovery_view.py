"""Terminal views of the recovery engine: the plan before acting, the result table after.

The dry run judges hosts with the engine's own detector (`recovery.detect.assess`) and
the engine's own settings (built from the same recover step `recover` would run, so
`--profile masakari` judges with Masakari's 60 s grace), so it never shows a plan for a
host the engine would leave alone (a management partition is only suspect) and says why
for each host it skips.
"""

from __future__ import annotations

from functools import partial

from rich.table import Table

from stackdrill.api import PowerState
from stackdrill.cli.render import console
from stackdrill.cli.session import LabSession
from stackdrill.drill.model import RecoverSpec
from stackdrill.recovery import RecoveryConfig, RecoveryEngine, RecoveryResult
from stackdrill.recovery.detect import Assessment, Verdict, assess
from stackdrill.topology.model import Role


def assess_hosts(session: LabSession, config: RecoveryConfig) -> list[Assessment]:
    """The engine's verdict on every compute host right now (monitoring began at 0 s)."""
    lab = session.lab
    now = lab.clock.now()
    compute = lab.drivers.compute
    return [assess(compute.health(h.name), partial(compute.witnesses, h.name), now,
                   config.grace_s, 0.0, config.fence_on_isolation, config.heartbeat_interval_s)
            for h in sorted(session.topology.hosts_with(Role.COMPUTE), key=lambda h: h.name)]


def nothing_to_recover(session: LabSession, spec: RecoverSpec) -> bool:
    """Every compute host is on and heartbeating and every instance runs somewhere.

    Without this, `recover` on a healthy lab would watch it for its whole budget waiting
    for a failure (the engine, as a monitor, waits for one)."""
    config = spec.config(stop_when_idle=True)
    lab = session.lab
    now = lab.clock.now()
    for host in session.topology.hosts_with(Role.COMPUTE):
        health = lab.drivers.compute.health(host.name)
        if health.power is not PowerState.ON or health.last_heartbeat is None \
                or now - health.last_heartbeat > config.heartbeat_interval_s * 2:
            return False
    running = lab.observe().running
    return all(running.get(i.name) for i in session.topology.instances)


def print_plan(session: LabSession, spec: RecoverSpec) -> None:
    """What the engine would do now for the hosts it judges down (no action taken)."""
    lab = session.lab
    config = spec.config(stop_when_idle=True)
    url = f"sqlite:///{session.workdir / 'plan.sqlite'}"
    engine = RecoveryEngine(session.topology, lab.drivers, lab.clock, url, config)
    engine.seed_inventory()
    now = lab.clock.now()
    out = console()
    verdicts = assess_hosts(session, config)
    for a in verdicts:
        if a.verdict is Verdict.SUSPECT:
            out.print(f"[yellow]{a.host}: {a.reason}[/yellow]")
    failed = [a.host for a in verdicts if a.verdict is Verdict.DOWN]
    if not failed:
        out.print(f"[green]no failed host at {now:.1f}s: nothing to recover[/green]")
        return
    for a in verdicts:
        if a.verdict is Verdict.DOWN:
            power = lab.drivers.power.state(a.host)
            fence = ("fencing ASSUMED (--assume-fenced)" if config.assume_fenced
                     else f"will be fenced first (power controller reports {power.value})")
            out.print(f"[red]{a.host} is down[/red]: {a.reason}; {fence}")
    plan = engine.plan(failed)
    table = Table(title=f"plan at {now:.1f}s for {', '.join(failed)} (dry run, "
                        f"--parallel {config.parallel})", title_justify="left")
    for col in ("instance", "from", "to", "attach"):
        table.add_column(col)
    for p in plan.placements:
        table.add_row(p.instance, p.source, p.target, str(p.mode or "—"))
    for u in plan.unplaceable:
        table.add_row(u.instance, u.source, "[red]—[/red]", f"[red]cannot recover: {u.reason}")
    out.print(table)


def print_result(result: RecoveryResult) -> None:
    table = Table(title="recovery result", title_justify="left")
    for col in ("instance", "before", "after", "state", "attach", "verified at", "reason"):
        table.add_column(col)
    for o in result.instances:
        colour = "green" if o.state.value in ("recovered", "running", "resumed",
                                                          "restarted") else "red"
        seen = f"{o.verified_at:.1f}s" if o.verified_at is not None else "—"
        table.add_row(o.name, o.host_before, o.host_after or "—",
                      f"[{colour}]{o.state.value}[/{colour}]", o.attach_mode or "—", seen,
                      o.reason)
    out = console()
    out.print(table)
    for host, why in result.blocked_hosts.items():
        out.print(f"[red]{host} stays fenced / blocks recovery: {why}[/red]")
