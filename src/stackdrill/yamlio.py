"""Reading YAML input files and turning every way they can be wrong into `Problem`s.

Shared by topologies and drills so both report errors the same way:
`file: path.in[2].file: what is wrong`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stackdrill.errors import InputError, Problem


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys, which PyYAML would silently overwrite."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_path(loc: tuple[str | int, ...]) -> str:
    """('instances', 3, 'host') -> 'instances[3].host'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_mapping(path: Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a YAML file that must hold one mapping; raise `error` naming the file otherwise."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(name, [Problem("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(name, [Problem("", f"cannot read: {exc}")]) from None
    return parse_mapping(text, name, error)


def parse_mapping(text: str, name: str, error: type[InputError]) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(name, [Problem(where, f"YAML syntax error: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise error(name, [Problem("", f"YAML syntax error: {exc}")]) from None
    if data is None:
        raise error(name, [Problem("", "empty document: expected a mapping")])
    if not isinstance(data, dict):
        got = type(data).__name__
        raise error(name, [Problem("", f"expected a mapping at the top, got {got}")])
    return data


def problems_from_validation(exc: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into `Problem`s with readable paths and messages."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        message = err["msg"]
        if err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            key = str(ctx.get("discriminator", "kind")).strip("'")
            loc = (*loc, key)
            expected = ctx.get("expected_tags")
            message = f"unknown {key} {ctx.get('tag')!r} (expected one of {expected})"
        elif err["type"] == "union_tag_not_found":
            key = str(err.get("ctx", {}).get("discriminator", "kind")).strip("'")
            message = f"required key {key!r} is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif "input" in err and err["type"] not in {"model_type", "dict_type"}:
            shown = repr(err["input"])
            if len(shown) <= 60:
                message = f"{message} (got {shown})"
        problems.append(Problem(format_path(loc), message))
    return problems


def _is_union_tag(part: object) -> bool:
    """pydantic puts the chosen tag of a discriminated union into `loc`; users never wrote it."""
    return (isinstance(part, str) and part.startswith("function-")) or part in _TAGS


_TAGS: set[object] = set()


def register_union_tags(tags: set[str]) -> None:
    """Discriminated unions register their tags so they are hidden from error paths."""
    _TAGS.update(tags)
