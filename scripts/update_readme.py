"""Regenerate the README's generated tables: backend x fault from the backends' own
declarations, and the peer suites' coverage from peer-suites.yaml and the drills.

Run: .venv/bin/python scripts/update_readme.py   (tests/unit/test_readme.py checks it is current)
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLES = {  # marker name -> the command whose output goes between its markers
    "backends-table": ["backends", "--markdown"],
    "coverage": ["coverage", "--markdown", "--catalogue", str(ROOT / "peer-suites.yaml"),
                 "--drills", str(ROOT / "lab" / "drills")],
}


def table(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return result.output.strip()


def updated(text: str) -> str:
    for name, args in TABLES.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{table(args)}\n{end}{tail}"
    return text


if __name__ == "__main__":
    README.write_text(updated(README.read_text()))
    sys.exit(0)
