"""Headless Chromium for the report tests: a screenshot of a page, and what the browser
laid out (boxes, text lengths, computed alignment) read back from a measured copy.

The page under test stays script-free; the measurement runs in a copy with one script
appended, which writes its findings into the DOM that `--dump-dom` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1280, 2000
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")

MEASURE = """<script>
(() => {
  const box = (e) => { const b = e.getBoundingClientRect();
                       return [b.left, b.top, b.right, b.bottom]; };
  const out = {viewport: document.documentElement.clientWidth,
               banner: box(document.querySelector('.banner h1')),
               banner_p: box(document.querySelector('.banner p'))};
  out.svgs = [...document.querySelectorAll('svg.timeline')].map((svg) => ({
    box: box(svg),
    texts: [...svg.querySelectorAll('text')].map((t) => ({
      text: t.lastChild ? t.lastChild.textContent : '', box: box(t)})),
    labels: [...svg.querySelectorAll('text.bar-label')].map((t) => ({
      text: t.textContent, length: t.getComputedTextLength(),
      room: +t.previousElementSibling.getAttribute('width') - 3})),
    marks: [...svg.querySelectorAll('g.op')].map((g) => ({
      tip: g.querySelector('title').textContent, box: box(g.lastElementChild)}))}));
  const align = (e) => getComputedStyle(e).textAlign;
  out.tables = [...document.querySelectorAll('table')].map((t) => ({
    heads: [...t.querySelectorAll('thead th')].map(align),
    rows: [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].map(align))}));
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def chromium() -> str | None:
    """The Chromium binary (Debian's package is `chromium`), or None."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


def _run(page: Path, profile: Path, *args: str) -> str:
    binary = chromium()
    assert binary is not None
    done = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}",
                           f"--window-size={WIDTH},{HEIGHT}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def screenshot(page: Path, png: Path, profile: Path) -> Path:
    """The page as a WIDTHxHEIGHT PNG, as a user's browser window shows its top."""
    _run(page, profile, f"--screenshot={png}")
    return png


def measure(page: Path, profile: Path) -> dict[str, Any]:
    """What the browser laid out for this page (see MEASURE)."""
    copy = page.with_name(page.stem + ".measured.html")
    copy.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = _run(copy, profile, "--dump-dom")
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    result: dict[str, Any] = json.loads(html.unescape(found[1]))
    return result
