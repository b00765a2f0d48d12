"""The command line: the same operations as the pytest plugin, for a person at a terminal.

Errors become one line and an exit code (see stackdrill.errors: 1 a failed check, 2 bad
input, 3 an infrastructure error, 4 an output not written, 130 Ctrl-C); tracebacks only
with --debug. SIGTERM and SIGHUP unwind like Ctrl-C (exit 128 + the signal), so labs and
scratch directories are removed on the way out.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from stackdrill import __version__
from stackdrill.backends import lifetime
from stackdrill.cli.compare import compare_cmd
from stackdrill.cli.conformance import conformance_cmd
from stackdrill.cli.coverage import coverage_cmd
from stackdrill.cli.fuzz import fuzz_cmd
from stackdrill.cli.inspect import status, verify
from stackdrill.cli.lab import down, exec_cmd, heal, inject, recover, up, wait
from stackdrill.cli.listing import list_cmd
from stackdrill.cli.run import backends, run, schema, validate
from stackdrill.errors import StackdrillError, until_stdout_closes

EPILOG = """\b
Examples:
  stackdrill run lab/drills/nova-host-failure.yaml --report report.html
  stackdrill validate lab/topologies/*.yaml lab/drills/*.yaml
  stackdrill up lab/topologies/nova-drbd.yaml --lab demo
  stackdrill inject host_crash host=cmp1 --lab demo
  stackdrill list labs
  stackdrill recover --lab demo --dry-run
  stackdrill compare lab/drills/split-brain.yaml --backends sim,libvirt
  stackdrill conformance
  stackdrill coverage
"""


class _Group(click.Group):
    """Turns every stackdrill error into one line and its exit code."""

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
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    lifetime.handle_signals()
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


for command in (run, compare_cmd, conformance_cmd, coverage_cmd, validate, schema, backends, up,
                status, inject, heal, exec_cmd, wait, recover, verify, down, list_cmd,
                fuzz_cmd):
    cli.add_command(command)


def main() -> None:
    sys.exit(until_stdout_closes(lambda: cli(prog_name="stackdrill")))


if __name__ == "__main__":  # pragma: no cover
    main()
