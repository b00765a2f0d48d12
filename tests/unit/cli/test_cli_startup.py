"""`stackdrill --help` and `--version` start fast: they import no command module, and so
none of SQLAlchemy, pydantic, simpy or the comparison code (measured with -X importtime,
in a fresh interpreter, as a user's shell runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from stackdrill.cli import COMMANDS, cli

SRC = str(Path(__file__).resolve().parents[3] / "src")
HEAVY = ("sqlalchemy", "pydantic", "simpy", "yaml", "rich", "stackdrill.cli.compare",
         "stackdrill.api", "stackdrill.recovery", "stackdrill.report")


def _imported(*args: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "stackdrill", *args],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    imported = _imported(*args)
    assert "stackdrill.cli" in imported  # the measurement saw the CLI itself
    assert not [m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY
                or any(m.startswith(h + ".") for h in HEAVY)]


def test_every_registered_command_loads_under_its_name() -> None:
    ctx = click.Context(cli)
    for entry in COMMANDS:
        command = cli.get_command(ctx, entry.name)
        assert isinstance(command, click.Command) and command.name == entry.name
        assert command.get_short_help_str() == entry.summary
