"""The conformance page (`stackdrill conformance --report PATH.html`) as text a reader sees:
whatever a recording or a situation holds is shown as written, never taken as markup."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from stackdrill.conformance import DEFAULT_DIR, Comparison, Observed, compare_all, read_all
from stackdrill.conformance.html import render_conformance_html
from stackdrill.conformance.situations import SITUATIONS

ROOT = Path(__file__).resolve().parents[3]
EVIL = "<script>alert(1)</script> & <b>co</b>"


class _Page(HTMLParser):
    """The elements a browser would build, and the text it would show."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hostile(comparison: Comparison) -> Comparison:
    """The recorded comparison with markup in every text a recording or situation brings:
    its name, what it exercises, a version, a value, and a not-modelled reason."""
    first, second, *rest = comparison.rows
    return replace(comparison, situation=EVIL, exercises=f"exercises {EVIL}",
                   versions={"kernel": f"6.1 {EVIL}"},
                   rows=(replace(first, recorded=Observed(value=f"value {EVIL}"), agrees=False),
                         replace(second, not_modelled=f"reason {EVIL}"), *rest))


def test_markup_in_a_recording_or_situation_shows_as_text() -> None:
    """`<script>`, `<b>` and `&` in a situation's name, its description, a version, a
    recorded value or a reason are text on the page: no script or bold element appears,
    and the reader sees each one exactly as written (the heading, the link to it, the
    list of differences at the top, the table and the reasons under it)."""
    comparison = compare_all(read_all(ROOT / DEFAULT_DIR, SITUATIONS)[:1], SITUATIONS)[0]
    page = _Page(render_conformance_html([_hostile(comparison)]))
    assert "script" not in page.tags
    text = "".join(page.text)
    assert text.count(EVIL) >= 4  # the differing list, the index link, the heading, ...
    for shown in (f"exercises {EVIL}", f"kernel 6.1 {EVIL}", f"value {EVIL}",
                  f"reason {EVIL}"):
        assert shown in text, shown
    assert f"#{EVIL}" in page.hrefs
