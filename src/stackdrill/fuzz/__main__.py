"""`python -m stackdrill.fuzz ...`: deprecated spelling of `stackdrill fuzz ...` (same
options; a sweep now stores its results and prints a summary, `--json` the old output)."""

from __future__ import annotations

import sys

from stackdrill.errors import until_stdout_closes
from stackdrill.fuzz.drive import shrink_outcome

__all__ = ["main", "shrink_outcome"]


def main(argv: list[str] | None = None) -> int:
    from stackdrill.cli import cli

    args = list(sys.argv[1:] if argv is None else argv)
    print("note: `python -m stackdrill.fuzz` is now `stackdrill fuzz`", file=sys.stderr)
    try:
        cli.main(["fuzz", *args], prog_name="stackdrill", standalone_mode=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(until_stdout_closes(main))
