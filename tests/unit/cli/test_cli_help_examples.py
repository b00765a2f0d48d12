"""Every example in every command's --help pastes into bash as the one command it shows:
bash parses it, it holds no pipe or list operator the shell would act on (an unquoted
`groups=sto1|sto2` is a pipe into a command `sto2`), and stackdrill accepts its
arguments (the command, its options and their values exist)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator

import click
import pytest

from stackdrill.cli import cli

ALLOWED_OPERATORS = {">"}  # `stackdrill schema topology > topology.schema.json`


def _commands(group: click.Group, ctx: click.Context,
              path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, (*path, name))
        else:
            yield (*path, name), command


def examples() -> list[tuple[str, str]]:
    """(command, example line) for every indented line of every epilog."""
    found = []
    for path, command in _commands(cli, click.Context(cli)):
        for line in (command.epilog or "").splitlines():
            if line.startswith("  ") and line.strip():
                found.append((" ".join(path) or "stackdrill", line.strip()))
    return found


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _parse(args: list[str]) -> None:
    """Parse the arguments as stackdrill would, down to the command's own options."""
    ctx = click.Context(cli, info_name="stackdrill")
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        found = command.get_command(ctx, name)
        assert found is not None, f"no command {name!r}"
        command = found
    command.make_context(command.name, args, parent=ctx)


def test_there_are_examples_in_every_command() -> None:
    commands = {name for name, _line in examples()}
    ctx = click.Context(cli)
    assert {n for p, _c in _commands(cli, ctx) if (n := " ".join(p))} <= commands


@pytest.mark.parametrize(("command", "line"), examples())
def test_an_example_pastes_into_bash_as_one_stackdrill_command(command: str, line: str) -> None:
    checked = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    words = _words(line)
    operators = [w for w in words if w and all(c in "|&;<>()" for c in w)]
    assert set(operators) <= ALLOWED_OPERATORS, f"the shell acts on {operators} in {line!r}"
    if words[0] == "eval":  # the completion line: its inner command is checked by itself
        return
    assert words[0] == "stackdrill", line
    end = words.index(">") if ">" in words else len(words)
    _parse(words[1:end])
