"""What a person types on the command line, checked before it reaches a lab: finite
numbers within bounds (click types) and faults checked against the lab's topology by the
same checks a drill's schedule gets (`drill.load.fault_problems`)."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import click
from pydantic import TypeAdapter, ValidationError

from stackdrill.api.commands import Command
from stackdrill.drill.load import command_problems, fault_problems
from stackdrill.errors import InputError, Problem
from stackdrill.faults import Fault, FaultAdapter
from stackdrill.topology import Topology
from stackdrill.yamlio import problems_from_validation

T = TypeVar("T")
WHERE = "command line"
MAX_ECHO = 40  # characters of a typed value repeated in an error


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan (which compares false with both bounds, so a
    plain range lets it through) and, whatever the bounds, inf."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number!r} is not a finite number", param, ctx)
        return number


LAB_SECONDS = FiniteFloatRange(min=0, max=86400)


def _finite(key: str, value: str) -> None:
    try:
        number = float(value)
    except ValueError:
        return
    if not math.isfinite(number):
        raise InputError(WHERE, [Problem(key, f"{value[:MAX_ECHO]!r} is not a finite number")])


def _key_values(params: tuple[str, ...]) -> dict[str, Any]:
    """host=cmp1 groups=a,b|c -> {"host": "cmp1", "groups": [["a", "b"], ["c"]]}."""
    values: dict[str, Any] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep:
            raise InputError(WHERE, [Problem(param[:MAX_ECHO], "expected key=value")])
        _finite(key[:MAX_ECHO], value)
        if key in ("groups", "pairs"):
            values[key] = [group.split(",") for group in value.split("|")]
        else:
            values[key] = value
    return values


def _validated(adapter: TypeAdapter[T], data: dict[str, Any], what: str) -> T:
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise InputError(what, problems_from_validation(exc, data)) from None


def parse_fault(kind: str, params: tuple[str, ...]) -> Fault:
    """host_crash host=cmp1 -> HostCrash(host="cmp1"); groups=a,b|c; pairs=a,b|b,c."""
    return _validated(FaultAdapter, {"kind": kind, **_key_values(params)}, f"fault {kind}")


def check_fault(fault: Fault, topology: Topology) -> None:
    """Refuse a fault naming a host, disk, network or overlay the lab does not have."""
    problems = fault_problems(fault, topology)
    if problems:
        raise InputError(WHERE, problems)


CommandAdapter: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(tool: str, params: tuple[str, ...]) -> Command:
    """drbdadm host=sto1 op=primary resource=r0 -> DrbdCommand(...), as a drill's `run`."""
    return _validated(CommandAdapter, {"tool": tool, **_key_values(params)}, f"command {tool}")


def check_command(command: Command, topology: Topology) -> None:
    """Refuse a command naming a host, resource or cluster node the lab does not have."""
    problems = command_problems(command, topology)
    if problems:
        raise InputError(WHERE, problems)
