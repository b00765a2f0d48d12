"""Terminal views of the recovery engine: the plan before acting, the result table after.

The dry run (`LabCore.dry_run`) judges hosts with the engine's own detector and settings,
so it never shows a plan for a host the engine would leave alone (a management partition
is only suspect) and says why for each host it skips.
"""

from __future__ import annotations

from rich.table import Table

from stackdrill.cli.render import console
from stackdrill.cli.session import LabSession
from stackdrill.drill.model import RecoverSpec
from stackdrill.recovery import RecoveryResult
from stackdrill.recovery.detect import Verdict


def print_plan(session: LabSession, spec: RecoverSpec) -> None:
    """What the engine would do now for the hosts it judges down (no action taken)."""
    dry = session.dry_run(spec)
    out = console()
    for a in dry.verdicts:
        if a.verdict is Verdict.SUSPECT:
            out.print(f"[yellow]{a.host}: {a.reason}[/yellow]")
    if dry.plan is None:
        out.print(f"[green]no failed host at {dry.now:.1f}s: nothing to recover[/green]")
        return
    for a in dry.verdicts:
        if a.verdict is Verdict.DOWN:
            fence = ("fencing ASSUMED (--assume-fenced)" if dry.assume_fenced
                     else f"will be fenced first (power controller reports "
                          f"{dry.power[a.host].value})")
            out.print(f"[red]{a.host} is down[/red]: {a.reason}; {fence}")
    bound = (f"--parallel {dry.parallel}" if dry.parallel is not None
             else f"flows at once: {dry.parallelism}")
    table = Table(title=f"plan at {dry.now:.1f}s for {', '.join(dry.failed)} (dry run, "
                        f"{bound})", title_justify="left")
    for col in ("instance", "from", "to", "attach"):
        table.add_column(col)
    for p in dry.plan.placements:
        table.add_row(p.instance, p.source, p.target, str(p.mode or "—"))
    for u in dry.plan.unplaceable:
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
