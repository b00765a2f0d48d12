"""Reading YAML input files, bounded, and turning every way they can be wrong into `Problem`s.

Shared by topologies and drills so both report errors the same way:
`file: path.in[2].file: what is wrong`. A file is read at most once, and never more
than `MAX_FILE_BYTES`; its YAML may nest at most `MAX_DEPTH` levels and expand (through
aliases and merge keys) to at most `MAX_NODES` values, so an alias bomb, a 100000-deep
`[[[...]]]` or a 50 MB file is refused at once with a message, not parsed for minutes,
blown up in memory or ended in a RecursionError.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from stackdrill.echo import shown
from stackdrill.errors import InputError, Problem
from stackdrill.validation import format_path, problems_from_validation, register_union_tags

MAX_FILE_BYTES = 1 << 20  # 1 MiB: the largest shipped topology (200 instances) is 39 KiB
MAX_DEPTH = 64  # nesting levels; a topology needs about 6
MAX_NODES = 100_000  # values after alias expansion; the largest shipped topology has ~5000

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "format_path", "parse_mapping",
           "problems_from_validation", "read_mapping", "read_text", "register_union_tags"]


class InputTooLarge(yaml.MarkedYAMLError):
    """The document is nested too deeply or expands to too many values."""


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (PyYAML would silently overwrite them),
    nesting deeper than `MAX_DEPTH` and documents that expand beyond `MAX_NODES`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise InputTooLarge(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Count the values the document stands for with every alias expanded (each node's
    size computed once, so this is linear in the file even when the expansion is not)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, depth)

    def measure(node: yaml.Node) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = (1, 1)  # a recursive alias counts once; the loader refuses it later
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        count, depth = 1, 1
        for child in children:
            c_count, c_depth = measure(child)
            count, depth = count + c_count, max(depth, c_depth + 1)
            if count > MAX_NODES or depth > MAX_DEPTH:
                break
        sizes[id(node)] = (count, depth)
        return count, depth

    count, depth = measure(root)
    if depth > MAX_DEPTH:
        raise InputTooLarge(None, None, f"nested deeper than {MAX_DEPTH} levels once its "
                            "aliases are expanded", root.start_mark)
    if count > MAX_NODES:
        raise InputTooLarge(None, None, f"expands to more than {MAX_NODES} values "
                            "(through aliases or merge keys)", root.start_mark)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        mark = key_node.start_mark
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value (line {mark.line + 1})", mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {shown(key)} (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_text(path: Path, error: type[InputError], limit: int = MAX_FILE_BYTES,
              usual: str = "a topology or drill is a few KiB") -> str:
    """The file's text: a regular file of at most `limit` bytes, read once, bounded
    (a FIFO, a device or /dev/zero is refused, never read to its end)."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise error(name, [Problem("", "not a regular file")])
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error(name, [Problem("", "no such file")]) from None
    except IsADirectoryError:
        raise error(name, [Problem("", "is a directory, not a file")]) from None
    except OSError as exc:
        raise error(name, [Problem("", f"cannot read: {exc.strerror or exc}")]) from None
    if len(data) > limit:
        raise error(name, [Problem("", f"larger than {limit // 1024} KiB: refused "
                                   f"({usual})")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(name, [Problem("", f"not UTF-8 text (byte {exc.start})")]) from None


def read_mapping(path: Path, error: type[InputError]) -> dict[str, Any]:
    """Parse a YAML file that must hold one mapping; raise `error` naming the file otherwise."""
    return parse_mapping(read_text(path, error), str(path), error)


def parse_mapping(text: str, name: str, error: type[InputError]) -> dict[str, Any]:
    """One YAML mapping from `text`, within the loader's bounds."""
    if len(text) > MAX_FILE_BYTES:
        raise error(name, [Problem("", f"larger than {MAX_FILE_BYTES // 1024} KiB: refused")])
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except InputTooLarge as exc:
        raise error(name, [Problem(_where(exc), f"refused: {exc.problem}")]) from None
    except yaml.MarkedYAMLError as exc:
        raise error(name, [Problem(_where(exc), f"YAML syntax error: {exc.problem}")]) from None
    except yaml.reader.ReaderError as exc:  # a control character: its own str is two lines
        raise error(name, [Problem(f"character {exc.position + 1}", f"YAML syntax error: "
                                   f"{exc.reason} (#x{exc.character:04x})")]) from None
    except yaml.YAMLError as exc:
        raise error(name, [Problem("", f"YAML syntax error: {exc}")]) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # a value PyYAML cannot build: 5000-digit integers, a 13th month
        raise error(name, [Problem("", f"a value YAML cannot read: {exc}"[:120])]) from None
    if data is None:
        raise error(name, [Problem("", "empty document: expected a mapping")])
    if not isinstance(data, dict):
        got = type(data).__name__
        raise error(name, [Problem("", f"expected a mapping at the top, got {got}")])
    return data


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
