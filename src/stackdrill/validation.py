"""pydantic's validation errors as `Problem`s: paths as the user wrote them, input echoed
bounded, unknown keys named only up to a few.

pydantic puts parts into an error's `loc` that the user never wrote: the chosen tag of a
discriminated union (`('schedule', 0, 'inject', 'host_crash', 'host')`), the member of a
plain union (`'tuple[str, ...]'`), a validator's name (`'function-after[...]'`). They are
recognised by walking `loc` through the input that was validated: a part that is not a
key (or index) of the data at that point is pydantic's, unless it is the last one of a
missing key. A key that happens to equal a tag (`drbd[0].size_gb`, `instances[0].overlay`)
is therefore kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from stackdrill.echo import MAX_KEYS, key_text, shown
from stackdrill.errors import Problem

MAX_PROBLEMS = 50  # per file; a hostile file could otherwise produce one per value
NO_DATA: Any = object()  # problems_from_validation without the input: tags are guessed


def format_path(loc: Sequence[str | int]) -> str:
    """('instances', 3, 'host') -> 'instances[3].host'; odd keys as a bounded repr."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = key_text(part)
            out += f".{text}" if out else text
    return out


def user_loc(loc: Sequence[str | int], data: Any, *, missing: bool = False
             ) -> tuple[str | int, ...]:
    """The parts of pydantic's `loc` that are keys and indexes of `data`, the input (and,
    for a `missing` error, the last part: the key the input lacks)."""
    if data is NO_DATA:
        return tuple(p for p in loc if not _is_union_tag(p))
    out: list[str | int] = []
    node = data
    tag_seen = False  # pydantic names the chosen tag once, right after the union's key
    for i, part in enumerate(loc):
        if not tag_seen and _chosen_tag(node, part):
            tag_seen = True  # `{tool: cluster, cluster: c1}`: the first 'cluster' is the tag
        elif _holds(node, part):
            out.append(part)
            node = node[part]
            tag_seen = False
        elif missing and i == len(loc) - 1:
            out.append(part)
        # anything else is pydantic's own: a union tag or member, a validator's name
    return tuple(out)


def _chosen_tag(node: Any, part: str | int) -> bool:
    """`part` is the tag this mapping chose in a discriminated union (its tool, kind or
    check), even where the mapping also has a key of that name."""
    return isinstance(node, dict) and part in _TAGS and any(
        node.get(key) == part for key in ("tool", "kind", "check"))


def _holds(node: Any, part: str | int) -> bool:
    """`part` is a key of the mapping or an index of the list `node`."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)


def problems_from_validation(exc: ValidationError, data: Any = NO_DATA) -> list[Problem]:
    """Turn pydantic's errors into `Problem`s with readable paths and messages. Pass the
    validated input as `data` so that error paths are exact."""
    problems: list[Problem] = []
    unknown: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = user_loc(err["loc"], data, missing=err["type"] == "missing")
        message, loc = _message(err, loc)
        problem = Problem(format_path(loc), message)
        (unknown if err["type"] == "extra_forbidden" else problems).append(problem)
    problems += unknown[:MAX_KEYS]
    if len(unknown) > MAX_KEYS:
        problems.append(Problem("", f"and {len(unknown) - MAX_KEYS} more unknown keys"))
    if len(problems) > MAX_PROBLEMS:
        rest = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], Problem("", f"and {rest} more problems")]
    return problems


def _message(err: Any, loc: tuple[str | int, ...]) -> tuple[str, tuple[str | int, ...]]:
    """The problem's text (and its path, which names the key for a tag error)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "union_tag_invalid":
        key = str(ctx.get("discriminator", "kind")).strip("'")
        expected = ctx.get("expected_tags")
        return f"unknown {key} {shown(ctx.get('tag'))} (expected one of {expected})", (*loc, key)
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "kind")).strip("'")
        return f"required key {key!r} is missing", loc
    if kind == "extra_forbidden":
        return "unknown key", loc
    if kind == "missing":
        return "required key is missing", loc
    message = str(err["msg"]).removeprefix("Value error, ")
    if "input" in err and kind not in {"model_type", "dict_type", "value_error"}:
        message = f"{message} (got {shown(err['input'])})"
    return message, loc


def _is_union_tag(part: object) -> bool:
    """Without the input: a validator's name, or a tag some union registered."""
    return (isinstance(part, str) and part.startswith("function-")) or part in _TAGS


_TAGS: set[object] = set()


def register_union_tags(tags: set[str]) -> None:
    """Discriminated unions register their tags, for callers that cannot pass the input
    to `problems_from_validation` (their paths may lose a key equal to a tag)."""
    _TAGS.update(tags)
