"""Regenerate the README's backend x fault table from the backends' own declarations.

Run: .venv/bin/python scripts/update_readme.py   (tests/unit/test_readme.py checks it is current)
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from stackdrill.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- backends-table:start -->", "<!-- backends-table:end -->"


def table() -> str:
    result = CliRunner().invoke(cli, ["backends", "--markdown"])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return result.output.strip()


def updated(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    README.write_text(updated(README.read_text()))
    sys.exit(0)
