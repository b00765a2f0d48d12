"""No validating regex in the library accepts a trailing newline: Python's `$` does, with
`.match` or `.search`. Patterns are used whole (`fullmatch`) or end in `\\Z`; pydantic's
patterns run on pydantic-core's Rust engine, whose `$` is the end of the text."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

SRC = Path(__file__).resolve().parents[2] / "src" / "stackdrill"
# a compiled or inline Python pattern that ends in `$`: the form that accepts "x\n"
_DOLLAR_PATTERN = re.compile(r"""re\.(?:compile|match|search)\(\s*r?["'][^"']*\$["']""")


def test_no_python_pattern_ends_in_a_dollar() -> None:
    offenders = [f"{path.relative_to(SRC)}:{n}"
                 for path in sorted(SRC.rglob("*.py"))
                 if path.name != "labstore.py"  # the CLI's, fixed there
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if _DOLLAR_PATTERN.search(line)]
    assert offenders == []


def test_pydantic_patterns_do_not_accept_a_trailing_newline() -> None:
    """The guarantee our `Field(pattern=...)` names rely on (pydantic-core's regex)."""

    class Named(BaseModel):
        name: str = Field(pattern=r"^[a-z]+$")

    assert Named(name="abc").name == "abc"
    try:
        Named(name="abc\n")
    except ValueError:
        return
    raise AssertionError("pydantic accepted a trailing newline with `$`")
