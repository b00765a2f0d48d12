"""Old option spellings kept working for a while: hidden from --help, and one line on
stderr naming the spelling to use (click's own notice names the Python parameter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def deprecated_option(old: str, use: str, dest: str, **attrs: Any) -> Callable[[F], F]:
    """A hidden option `old` stored in `dest` that says, when given, to use `use`."""

    def notice(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not ctx.resilient_parsing:
            click.echo(f"stackdrill: warning: {old} is deprecated; use {use}", err=True)
        return value

    return click.option(old, dest, hidden=True, default=None, callback=notice, **attrs)
