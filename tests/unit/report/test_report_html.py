"""The HTML report: one self-contained page a user opens without Allure or a network."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from report_samples import TOPOLOGY, sample_report

from stackdrill.report import pictures
from stackdrill.report.html import render_html


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]


def test_page_is_self_contained_with_the_timeline_and_topology() -> None:
    """The timeline is inline SVG, the topology an inline PNG: nothing is fetched."""
    page = render_html(sample_report(), TOPOLOGY)
    parser = _Refs()
    parser.feed(page)
    assert all(ref.startswith("data:image/png;base64,") for ref in parser.refs)
    for ref in parser.refs:
        assert base64.b64decode(ref.split(",", 1)[1]).startswith(b"\x89PNG")
    if pictures.dot_available():
        assert len(parser.refs) == 1
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') == 2
    assert "<link" not in page and "<script" not in page


def test_values_from_the_drill_are_escaped() -> None:
    """A check's detail is text, never markup (jinja2's autoescape)."""
    r = sample_report(lose_db1=True)
    evil = r.checks[2].model_copy(update={"detail": "<script>alert(1)</script>"})
    page = render_html(r.model_copy(update={"checks": (*r.checks[:2], evil, r.checks[3])}),
                       TOPOLOGY)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_failed_drill_says_why_at_the_top() -> None:
    page = render_html(sample_report(lose_db1=True), TOPOLOGY)
    assert 'class="banner fail"' in page
    why = page.index("Why it failed")
    assert why < page.index("<h2>Instances")
    assert "db1: 3 of 120 acked writes lost" in page
    assert "NEVER RAN" in page and "phase verify not reached" in page
    assert re.search(r'<tr class="bad"><td>db1</td>', page)
    assert "Around the recovery: 7.4 s to 38.6 s" in page


def test_passing_drill_banner() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    assert 'class="banner pass"' in page and "Why it failed" not in page
    assert "seed <b>42</b>" in page


def test_missing_graphviz_degrades_visibly(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `dot`: the page still renders, and says the topology picture is unavailable."""
    monkeypatch.setattr(pictures, "dot_available", lambda: False)
    page = render_html(sample_report(), TOPOLOGY)
    assert "topology picture unavailable" in page and "graphviz" in page
