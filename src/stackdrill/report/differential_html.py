"""The differential as one self-contained HTML page: both backends side by side.

Styled with the drill report's own stylesheet (read from template.html, so the two
pages look alike without a second copy of the CSS); one table per section, the rows
where the backends disagree marked, and the list of disagreements at the top.
"""

from __future__ import annotations

import re
from html import escape
from importlib import resources
from string import Template

from stackdrill.report.differential import SECTIONS, Differential, Value

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
$style
</head>
<body>
<div class="banner $banner_class">
<h1>$heading</h1>
<p>$summary</p>
</div>
<main>
$body
</main>
</body>
</html>
""")


def page(title: str, ok: bool, heading: str, summary: str, body: str) -> str:
    """One self-contained page in the drill report's style: a green or red banner with a
    heading and a summary line, then `body` (HTML). Text arguments are escaped here."""
    return _PAGE.substitute(title=escape(title), style=page_style(),
                            banner_class="pass" if ok else "fail", heading=escape(heading),
                            summary=escape(summary), body=body)


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


def page_style() -> str:
    """The drill report's stylesheet (one copy of the CSS for every page)."""
    page = resources.files("stackdrill.report").joinpath("template.html").read_text("utf-8")
    found = re.search(r"<style>.*?</style>", page, re.DOTALL)
    return found.group(0) if found else ""


def _section(diff: Differential, name: str, left: str, right: str) -> str:
    rows = [row for row in diff.rows if row.section == name]
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in ("what", left, right, "agree"))
    body = "".join(
        f'<tr class="{"" if row.agree else "bad"}"><td>{escape(row.what)}</td>'
        f"<td>{escape(format_value(row.left))}</td><td>{escape(format_value(row.right))}</td>"
        + ('<td><span class="ok">yes</span></td>' if row.agree else
           '<td><span class="fail">NO</span></td>') + "</tr>"
        for row in rows
    )
    return (f"<h2>{escape(name.capitalize())}</h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _disagreements(diff: Differential) -> str:
    if diff.agrees:
        return ""
    items = "".join(
        f"<li><b>{escape(row.section)}: {escape(row.what)}</b>: "
        f"{escape(format_value(row.left))} vs {escape(format_value(row.right))}"
        + "".join(f"<br>{escape(backend)}: {escape(detail)}"
                  for backend, detail in ((diff.left_backend, row.left_detail),
                                          (diff.right_backend, row.right_detail)) if detail)
        + "</li>"
        for row in diff.disagreements
    )
    return f'<h2>Where the backends disagree</h2><ul class="summary">{items}</ul>'


def render_differential_html(diff: Differential) -> str:
    """The whole differential as one HTML document (str)."""
    left = side(diff.left_backend, diff.left_seed)
    right = side(diff.right_backend, diff.right_seed)
    word = "AGREE" if diff.agrees else "DISAGREE"
    bad = len(diff.disagreements)
    summary = (f"{len(diff.rows)} rows compared"
               + ("" if diff.agrees else f", {bad} disagree"))
    return page(f"{word} {diff.drill}: {left} vs {right}", diff.agrees,
                f"{word} — {diff.drill}", f"{left} vs {right} · {summary}",
                _disagreements(diff)
                + "".join(_section(diff, name, left, right) for name in SECTIONS))
