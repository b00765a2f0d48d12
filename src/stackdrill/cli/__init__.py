"""The command line: the same operations as the pytest plugin, for a person at a terminal.

Errors become one line and an exit code (see stackdrill.errors: 1 a failed check, 2 bad
input, 3 an infrastructure error, 4 an output not written, 130 Ctrl-C); tracebacks only
with --debug. SIGTERM and SIGHUP unwind like Ctrl-C (exit 128 + the signal), so labs and
scratch directories are removed on the way out.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import click

from stackdrill import __version__
from stackdrill.errors import StackdrillError, until_stdout_closes

EPILOG = """\b
Examples:
  stackdrill list drills
  stackdrill run nova-host-failure --report report.html
  stackdrill run lab/drills/net-host-failure.yaml --backend netns --seed 7
  stackdrill validate lab/topologies/*.yaml lab/drills/*.yaml
  stackdrill lint lab/topologies/two-node-clvm.yaml
  stackdrill up lab/topologies/nova-drbd.yaml --lab demo
  stackdrill inject host_crash host=cmp1 --lab demo
  stackdrill status --lab demo --json
  stackdrill recover --lab demo --dry-run
  stackdrill gate lab/topologies/nova-drbd.yaml --report gate-report
  stackdrill compare split-brain --backend sim,libvirt
  stackdrill conformance
  stackdrill coverage
Shell completion (bash; zsh and fish alike):
  eval "$(_STACKDRILL_COMPLETE=bash_source stackdrill)"
"""


@dataclass(frozen=True)
class Entry:
    """A command of `stackdrill`, registered without importing it: `stackdrill --help`
    lists `summary`, and only the command that runs imports its module (click's LazyGroup
    pattern), so start-up does not pay for SQLAlchemy, pydantic models or the simulator."""

    name: str
    target: str  # "module:attribute" of the click command
    summary: str  # the line `stackdrill --help` shows; also the command's short help


# The one registration list: a new command is one line here.
COMMANDS: tuple[Entry, ...] = (
    Entry("run", "stackdrill.cli.run:run", "Run one drill and print its report."),
    Entry("gate", "stackdrill.cli.gate:gate",
          "Run the standard drill set against a topology: one verdict per drill."),
    Entry("compare", "stackdrill.cli.compare:compare_cmd",
          "Run a drill on two backends (or read two reports) and compare."),
    Entry("conformance", "stackdrill.cli.conformance:conformance_cmd",
          "Compare the simulator with recordings of the real software."),
    Entry("coverage", "stackdrill.cli.coverage:coverage_cmd",
          "The peer suites' situations and the drills that rehearse them."),
    Entry("validate", "stackdrill.cli.run:validate", "Check topology and drill files."),
    Entry("import", "stackdrill.cli.importing:import_cmd",
          "Read real configuration files (DRBD, LVM, corosync, libvirt, Nova) as a topology."),
    Entry("lint", "stackdrill.cli.lint:lint",
          "Flag dangerous settings, each with the drill that shows the damage."),
    Entry("schema", "stackdrill.cli.run:schema",
          "Print the JSON Schema of topology or drill files."),
    Entry("backends", "stackdrill.cli.run:backends",
          "Which faults and features each backend can realise."),
    Entry("up", "stackdrill.cli.lab:up", "Bring up a named lab from a topology and keep it."),
    Entry("status", "stackdrill.cli.inspect:status",
          "Show a lab: time, power, instances, DRBD, faults in force."),
    Entry("inject", "stackdrill.cli.lab:inject", "Inject a fault into a lab now."),
    Entry("heal", "stackdrill.cli.lab:heal", "Heal a fault (or all of them)."),
    Entry("exec", "stackdrill.cli.lab:exec_cmd", "Run an operator command on a lab now."),
    Entry("wait", "stackdrill.cli.lab:wait", "Let lab time pass."),
    Entry("recover", "stackdrill.cli.lab:recover",
          "Run the recovery engine on a lab now."),
    Entry("verify", "stackdrill.cli.inspect:verify", "Check a lab now with the drill checks."),
    Entry("down", "stackdrill.cli.lab:down", "Tear a lab down and forget it."),
    Entry("list", "stackdrill.cli.listing:list_cmd",
          "List drills, labs, faults or backends."),
    Entry("fuzz", "stackdrill.cli.fuzz:fuzz_cmd",
          "Random drills: replay a seed, or sweep a range (in-process or on Dask)."),
)


class _Group(click.Group):
    """Loads each command when it is used, and turns every stackdrill error into one line
    and its exit code."""

    entries: ClassVar[dict[str, Entry]] = {entry.name: entry for entry in COMMANDS}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.entries})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.entries.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module, _sep, attribute = entry.target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        command.short_help = entry.summary
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the registrations: no command module is imported."""
        rows = [(name, self.entries[name].summary if name in self.entries else
                 (self.commands[name].get_short_help_str() if name in self.commands else ""))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StackdrillError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            for line in str(exc).splitlines() or ["(no message)"]:
                click.echo(f"stackdrill: error: {line}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("stackdrill: interrupted; the lab was torn down", err=True)
            ctx.exit(130)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackdrill")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Rehearse cloud disasters in a lab before they happen in production.

    A drill brings up a lab (compute hosts, DRBD-replicated storage, clustered
    LVM, an overlay network), injects host, disk and network failures, runs the
    bundled recovery engine, and proves that every instance runs again exactly
    once with its acknowledged data intact. The default backend is a
    deterministic simulator: the same drill and seed give the same result.
    """
    from stackdrill.backends import lifetime

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    lifetime.handle_signals()
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    sys.exit(until_stdout_closes(lambda: cli(prog_name="stackdrill")))


if __name__ == "__main__":  # pragma: no cover
    main()
