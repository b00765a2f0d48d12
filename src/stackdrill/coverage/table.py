"""The coverage table: each situation with the backends its drills can run on (derived
from the backends' declared limits) and the real backends whose CI set runs it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stackdrill.backends import backend_class
from stackdrill.coverage.model import Catalogue, Situation, Status
from stackdrill.drill import load_drill
from stackdrill.drill.support import unsupported

BACKENDS = ("sim", "netns", "libvirt")


@dataclass(frozen=True)
class CoverageRow:
    situation: Situation
    runs_on: tuple[str, ...]  # backends one of the situation's drills can run on

    @property
    def status(self) -> Status:
        return self.situation.status

    @property
    def on_sim(self) -> bool:
        return self.status is Status.COVERED and "sim" in self.runs_on

    @property
    def on_real(self) -> tuple[str, ...]:
        """Real backends that can run it and whose CI set does."""
        return tuple(b for b in self.situation.real if b in self.runs_on)


def _runs_on(situation: Situation, drills_dir: Path) -> tuple[str, ...]:
    """A situation is rehearsed on a backend when one of its drills runs there (the same
    situation may need a DRBD lab on guests and a network-volume lab on namespaces)."""
    if not situation.drills:
        return ()
    drills = [load_drill(drills_dir / f"{name}.yaml") for name in situation.drills]
    return tuple(b for b in BACKENDS
                 if any(not unsupported(d, b, backend_class(b).capabilities) for d in drills))


def coverage_rows(catalogue: Catalogue, drills_dir: Path) -> list[CoverageRow]:
    return [CoverageRow(s, _runs_on(s, drills_dir)) for s in catalogue.situations]


def summary(rows: list[CoverageRow]) -> str:
    """'covered 21 of 51 in scope on sim, 8 on a real backend; 12 out of scope'."""
    counts = Counter(r.status for r in rows)
    in_scope = len(rows) - counts[Status.OUT_OF_SCOPE]
    on_sim = sum(r.on_sim for r in rows)
    on_real = sum(bool(r.on_real) for r in rows)
    return (f"{on_sim} of {in_scope} situations in scope rehearsed on sim, {on_real} on a "
            f"real backend; {counts[Status.MISSING]} missing; "
            f"{counts[Status.OUT_OF_SCOPE]} out of scope")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[CoverageRow]) -> str:
    """The README's coverage table."""
    lines = ["| suite | test | rehearsed by | sim | real backend | notes |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        s = row.situation
        if row.status is Status.COVERED:
            by = ", ".join(f"`{d}`" for d in s.drills)
            sim = "yes" if row.on_sim else "no"
            real = ", ".join(row.on_real) or "—"
            note = f"partly: {s.partly}" if s.partly else ""
        else:
            by, sim, real = f"*{row.status.value}*", "—", "—"
            note = s.missing or s.out_of_scope or ""
        lines.append(f"| {s.suite.value} | {_cell(s.test)} | {by} | {sim} | {real} | "
                     f"{_cell(note)} |")
    return "\n".join(lines) + "\n\n" + summary(rows) + "\n"
