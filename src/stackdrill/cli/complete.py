"""Shell completion of values (click completes commands and options by itself): the
shipped drills' names and the registered backends, without loading a drill or a backend."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from stackdrill import shipped
from stackdrill.backends import REGISTRY


def complete_drill(_ctx: click.Context, _param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    """Shell completion of DRILL: the shipped drills' names, and files."""
    names = [CompletionItem(d.name) for d in shipped.drills() if d.name.startswith(incomplete)]
    return [*names, CompletionItem(incomplete, type="file")]


def complete_backend(_ctx: click.Context, _param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(name) for name in sorted(REGISTRY) if name.startswith(incomplete)]
