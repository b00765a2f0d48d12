"""`python -m stackdrill` is the same as the `stackdrill` command."""

from __future__ import annotations

from stackdrill.cli import main

main()
