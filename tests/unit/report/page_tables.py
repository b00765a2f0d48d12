"""The tables of an HTML page as a reader sees them: header texts, and per row its class
and cell texts (entities decoded), so tests do not depend on how markup is escaped."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class PageTable:
    heading: str  # the <h2>/<h3> above it
    heads: list[str] = field(default_factory=list)
    head_classes: list[str] = field(default_factory=list)
    rows: list[tuple[str, list[str]]] = field(default_factory=list)  # (tr class, cells)
    cell_classes: list[list[str]] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[PageTable] = []
        self.heading = ""
        self._text: list[str] | None = None
        self._in_heading = False
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag in ("h2", "h3"):
            self._in_heading, self.heading = True, ""
        elif tag == "table":
            self.tables.append(PageTable(self.heading))
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[-1].rows.append((cls, []))
            self.tables[-1].cell_classes.append([])
        elif tag in ("th", "td"):
            self._text = []
            table = self.tables[-1]
            (table.cell_classes[-1] if self._in_body else table.head_classes).append(cls)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "h3"):
            self._in_heading = False
        elif tag == "tbody":
            self._in_body = False
        elif tag in ("th", "td") and self._text is not None:
            text, self._text = "".join(self._text).strip(), None
            table = self.tables[-1]
            (table.rows[-1][1] if self._in_body else table.heads).append(text)

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
        elif self._in_heading:
            self.heading += data


def tables(page: str) -> list[PageTable]:
    parser = _Parser()
    parser.feed(page)
    return parser.tables


def table(page: str, heading: str) -> PageTable:
    """The first table under the heading that starts with `heading`."""
    return next(t for t in tables(page) if t.heading.strip().startswith(heading))
