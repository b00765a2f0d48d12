"""The one jinja2 environment of every report page: templates shipped with the package,
autoescaping always on, so no value from a drill, a topology or a tool's output can
inject markup into a page (values already HTML are wrapped in `markupsafe.Markup`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from jinja2 import Environment


@cache
def environment() -> Environment:
    """Built on first use: `stackdrill --help` and the JSON report never import jinja2."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("stackdrill.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["t"] = seconds
    env.globals["zip"] = zip
    return env


def seconds(value: float | None) -> str:
    """Lab seconds as the pages print them: one decimal, "—" for none."""
    return "—" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class Column:
    name: str
    num: bool = False  # right-aligned, header too, so the numbers sit under it


@dataclass(frozen=True)
class Row:
    cells: tuple[str | Markup, ...]  # text (escaped by the template) or Markup
    cls: str = ""  # "bad" / "warn" rows are tinted


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


def columns(*names: str, num: Iterable[str] = ()) -> tuple[Column, ...]:
    numeric = set(num)
    return tuple(Column(n, n in numeric) for n in names)
