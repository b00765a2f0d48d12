"""The conformance corpus as one self-contained HTML page: per situation, what the real
software did and what the simulator does, field by field.

Styled with the drill report's stylesheet (as the differential page is); the situations
that differ come first in a list at the top, then an index of every situation, and each
recording names the software it was recorded with, so a reader can tell which kernel or
DRBD a number belongs to.
"""

from __future__ import annotations

from html import escape

from stackdrill.conformance.model import Comparison, FieldComparison
from stackdrill.report.differential_html import page


def _versions(comparison: Comparison) -> str:
    return ", ".join(f"{name} {version}" for name, version in sorted(comparison.versions.items()))


def _verdict_cell(row: FieldComparison) -> str:
    if row.not_modelled:
        return f"<td>not modelled: {escape(row.not_modelled)}</td>"
    return ('<td><span class="ok">yes</span></td>' if row.agrees else
            '<td><span class="fail">NO</span></td>')


def _situation(comparison: Comparison) -> str:
    head = "".join(f"<th>{h}</th>" for h in
                   ("field", f"recorded ({escape(comparison.backend)})", "simulated",
                    "tolerance", "agree"))
    body = "".join(
        f'<tr class="{"" if row.agrees or row.not_modelled else "bad"}">'
        f"<td>{escape(row.name)}</td>"
        f"<td>{escape(row.recorded.show())}</td>"
        f"<td>{escape(row.simulated.show() if row.simulated else '(none)')}</td>"
        f"<td>{escape(row.tolerance.show())}</td>"
        + _verdict_cell(row) + "</tr>"
        for row in comparison.rows)
    return (f'<h2 id="{escape(comparison.situation)}">{escape(comparison.situation)}</h2>'
            f"<p>{escape(comparison.exercises)}</p>"
            f"<p>recorded on {escape(comparison.backend)}, {escape(comparison.recorded_on)}:"
            f" {escape(_versions(comparison))}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _differing(comparisons: list[Comparison]) -> str:
    bad = [c for c in comparisons if not c.agrees]
    if not bad:
        return ""
    items = "".join(
        f'<li><a href="#{escape(c.situation)}"><b>{escape(c.situation)}</b></a>: '
        + "; ".join(f"{escape(row.name)} recorded {escape(row.recorded.show())}, simulated "
                    f"{escape(row.simulated.show() if row.simulated else '(none)')}"
                    for row in c.differing) + "</li>"
        for c in bad)
    return f'<h2>Where the simulator differs</h2><ul class="summary">{items}</ul>'


def _index(comparisons: list[Comparison]) -> str:
    """One line per situation, linked to its table: a corpus of dozens needs a map."""
    rows = "".join(
        f'<tr class="{"" if c.agrees else "bad"}">'
        f'<td><a href="#{escape(c.situation)}">{escape(c.situation)}</a></td>'
        f"<td>{escape(c.backend)}</td>"
        f"<td>{sum(r.agrees for r in c.rows if not r.not_modelled)} of "
        f"{sum(not r.not_modelled for r in c.rows)}</td><td>{len(c.uncovered)}</td>"
        + ('<td><span class="ok">yes</span></td>' if c.agrees else
           '<td><span class="fail">NO</span></td>') + "</tr>"
        for c in comparisons)
    head = "".join(f"<th>{h}</th>" for h in ("situation", "recorded on", "fields agreeing",
                                              "not modelled", "agree"))
    return (f"<h2>Situations</h2><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def render_conformance_html(comparisons: list[Comparison]) -> str:
    """The whole comparison as one HTML document (str)."""
    agrees = all(c.agrees for c in comparisons)
    differ = sum(not c.agrees for c in comparisons)
    word = "AGREE" if agrees else "DIFFER"
    summary = f"{len(comparisons)} situation(s) compared" + (
        "" if agrees else f", {differ} differ")
    return page(f"{word}: simulator vs recordings", agrees,
                f"{word} — simulator vs recordings of the real software", summary,
                _differing(comparisons) + _index(comparisons)
                + "".join(_situation(c) for c in comparisons))
