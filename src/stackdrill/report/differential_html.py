"""The differential as one self-contained HTML page: both backends side by side.

Rendered by jinja2 (templates/compare.html) on the drill report's base template, so
the two pages share one stylesheet and banner; one table per section, the rows where
the backends disagree marked, and the list of disagreements at the top.
"""

from __future__ import annotations

from stackdrill.report.differential import SECTIONS, Differential, Value
from stackdrill.report.render import environment


def format_value(value: Value) -> str:
    """How a cell reads: None is "—" (that side has no such row), booleans yes/no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    return value


def side(backend: str, seed: int) -> str:
    return f"{backend} (seed {seed})"


def render_differential_html(diff: Differential) -> str:
    """The whole differential as one HTML document (str)."""
    left = side(diff.left_backend, diff.left_seed)
    right = side(diff.right_backend, diff.right_seed)
    word = "AGREE" if diff.agrees else "DISAGREE"
    summary = (f"{len(diff.rows)} rows compared"
               + ("" if diff.agrees else f", {len(diff.disagreements)} disagree"))
    sections = [(name, rows) for name in SECTIONS
                if (rows := [row for row in diff.rows if row.section == name])]
    env = environment().overlay()
    env.filters["cell"] = format_value
    return env.get_template("compare.html").render(
        title=f"{word} {diff.drill}: {left} vs {right}",
        banner_class="pass" if diff.agrees else "fail", heading=f"{word} — {diff.drill}",
        summary=f"{left} vs {right} · {summary}", left=left, right=right,
        left_backend=diff.left_backend, right_backend=diff.right_backend,
        disagreements=diff.disagreements, sections=sections)
