"""The imported topology as YAML, each field followed by a comment naming the file and
line it came from, so an operator can check every value against their own files."""

from __future__ import annotations

from typing import Any

import yaml

from stackdrill.echo import cut
from stackdrill.importer.result import ImportResult, Unmapped


def _safe(text: str) -> str:
    """A comment's text on one line whatever a file name holds (a CR or a line separator
    would end the comment and make the rest YAML)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip().removesuffix(
        "\n...").strip()


def render(result: ImportResult, config_dir: str) -> str:
    origins = {m.path: str(m.source) for m in result.mapped}
    data = result.topology.model_dump(mode="json", exclude_defaults=True)
    lines = [f"# Imported by `stackdrill import {_safe(config_dir)}`: each field's comment names "
             "the file it was read from;", "# a field without one is the lab's default "
             "or derived (roles, purposes, names)."]
    lines += _unmapped_header(result.unmapped)
    _emit(data, "", 0, lines, origins)
    return "\n".join(lines) + "\n"


def _unmapped_header(unmapped: tuple[Unmapped, ...]) -> list[str]:
    out = []
    for item in unmapped:
        if item.kind.value != "ignored":
            out.append(_safe(cut(f"# not mapped ({item.kind.value}): {item.source}: "
                                 f"{item.option}: {item.why}", 400)))
    return out


def _comment(path: str, origins: dict[str, str]) -> str:
    origin = origins.get(path)
    return f"  # {_safe(origin)}" if origin else ""


def _emit(value: Any, path: str, indent: int, lines: list[str],
          origins: dict[str, str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            _entry(f"{pad}{_scalar(key)}:", item, sub, indent, lines, origins)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            sub = f"{path}[{i}]"
            if isinstance(item, dict) and item:  # "- name: r0" then its other keys
                start = len(lines)
                _emit(item, sub, indent + 2, lines, origins)
                lines[start] = f"{pad}- {lines[start][indent + 2:]}"
            else:
                _entry(f"{pad}-", item, sub, indent, lines, origins)


def _entry(head: str, item: Any, path: str, indent: int, lines: list[str],
           origins: dict[str, str]) -> None:
    nested = isinstance(item, list) and any(isinstance(x, dict) for x in item)
    if (isinstance(item, dict) and item) or nested:
        lines.append(head + _comment(path, origins))
        _emit(item, path, indent + 2, lines, origins)
    else:
        lines.append(f"{head} {_scalar(item)}{_comment(path, origins)}")
