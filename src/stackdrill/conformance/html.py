"""The conformance corpus as one self-contained HTML page: per situation, what the real
software did and what the simulator does, field by field.

Rendered by the report pages' jinja2 environment (autoescaping on, so a recorded value,
a version string or a reason is always text) from `templates/conformance.html`, in the
drill report's style; the situations that differ come first in a list at the top, then an
index of every situation, and each recording names the software it was recorded with, so
a reader can tell which kernel or DRBD a number belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from stackdrill.conformance.model import Comparison, FieldComparison, Observed
from stackdrill.report.render import Row, Table, columns, environment

YES = Markup('<span class="ok">yes</span>')
NO = Markup('<span class="fail">NO</span>')
# not judged either way; its reason is a paragraph, listed under the table, not squeezed
# into this column beside the values
UNCOVERED = Markup('<span class="never">not modelled</span>')


@dataclass(frozen=True)
class Section:
    """One situation's part of the page: its comparison and its field-by-field table."""

    comparison: Comparison
    table: Table

    @property
    def versions(self) -> str:
        return ", ".join(f"{name} {version}"
                         for name, version in sorted(self.comparison.versions.items()))


def _numeric(values: Sequence[Observed | None]) -> bool:
    """A column of numbers (blanks allowed) is right-aligned; one word or state among
    them and it stays text, left-aligned, so a column is never aligned two ways."""
    present = [v.value for v in values if v is not None and v.value is not None]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                 for v in present)


def _verdict(row: FieldComparison) -> Markup:
    if row.not_modelled:
        return UNCOVERED
    return YES if row.agrees else NO


def _shown(value: Observed | None) -> str:
    """A value as its cell reads: an empty string is named, a blank cell reads as missing."""
    if value is None:
        return "(none)"
    return "(empty)" if value.value == "" else value.show()


def _table(comparison: Comparison) -> Table:
    recorded = f"recorded ({comparison.backend})"
    # recorded and simulated side by side are aligned alike, so the two can be compared
    values = [v for r in comparison.rows for v in (r.recorded, r.simulated)]
    numbers = (recorded, "simulated") if _numeric(values) else ()
    rows = tuple(Row((row.name, _shown(row.recorded), _shown(row.simulated),
                      row.tolerance.show(), _verdict(row)),
                     "" if row.agrees or row.not_modelled else "bad")
                 for row in comparison.rows)
    return Table(columns("field", recorded, "simulated", "tolerance", "agree", num=numbers),
                 rows)


def _link(situation: str) -> Markup:
    return Markup('<a href="#{0}">{0}</a>').format(situation)  # format escapes its argument


def _index(comparisons: list[Comparison]) -> Table:
    """One line per situation, linked to its table: a corpus of dozens needs a map."""
    rows = tuple(
        Row((_link(c.situation), c.backend,
             f"{sum(r.agrees for r in c.rows if not r.not_modelled)} of "
             f"{sum(not r.not_modelled for r in c.rows)}",
             str(len(c.uncovered)), YES if c.agrees else NO),
            "" if c.agrees else "bad")
        for c in comparisons)
    return Table(columns("situation", "recorded on", "fields agreeing", "not modelled",
                         "agree", num=("fields agreeing", "not modelled")), rows)


def render_conformance_html(comparisons: list[Comparison]) -> str:
    """The whole comparison as one HTML document (str)."""
    agrees = all(c.agrees for c in comparisons)
    differ = sum(not c.agrees for c in comparisons)
    word = "AGREE" if agrees else "DIFFER"
    summary = f"{len(comparisons)} situation(s) compared" + (
        "" if agrees else f", {differ} differ")
    env = environment().overlay()
    env.filters["shown"] = _shown
    return env.get_template("conformance.html").render(
        title=f"{word}: simulator vs recordings", banner_class="pass" if agrees else "fail",
        heading=f"{word} — simulator vs recordings of the real software", summary=summary,
        differing=[c for c in comparisons if not c.agrees], index=_index(comparisons),
        sections=[Section(c, _table(c)) for c in comparisons])
