"""The README stays true: its backend table is what the backends declare, and its two
commands exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_backend_table_matches_declarations() -> None:
    spec = importlib.util.spec_from_file_location("update_readme",
                                                  ROOT / "scripts" / "update_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "README.md").read_text()
    assert module.updated(text) == text, "run scripts/update_readme.py"


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    text = (ROOT / "README.md").read_text()
    assert "./scripts/demo.sh" in text and "./scripts/test.sh" in text
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
