"""The report pages as a user sees them: rendered by headless Chromium, screenshotted,
and checked for what a reader would notice (a headline that can be read, a timeline
that stays on the page with labels inside their bars, numbers under their headers)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import drill_runs
import pytest
from browser import WIDTH, chromium, measure, screenshot
from PIL import Image

from stackdrill.checks import CheckResult
from stackdrill.conformance import DEFAULT_DIR, compare_all, read_all
from stackdrill.conformance.html import render_conformance_html
from stackdrill.conformance.situations import SITUATIONS
from stackdrill.report import Report
from stackdrill.report.differential import compare
from stackdrill.report.differential_html import render_differential_html
from stackdrill.report.html import render_html

pytestmark = pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed "
                                "(Debian: apt-get install chromium; scripts/setup.sh does)")

RGB = tuple[int, int, int]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A passing and a failing real sim drill's report, an infrastructure error's page, a
    disagreeing compare page, and the conformance page of the whole recorded corpus (as
    `stackdrill conformance --report` writes it)."""
    out = tmp_path_factory.mktemp("pages")
    passed, drill = drill_runs.passing()
    failed, strict = drill_runs.failing(out)
    assert passed.passed and not failed.passed
    flipped = passed.model_copy(update={"checks": (
        CheckResult.failed(passed.checks[0].name, "seen twice"), *passed.checks[1:])})
    error = Report.infrastructure_error(drill=drill.name, backend="libvirt", seed=1,
                                        topology=drill.topology.name,
                                        reason="lab not ready: cmp2 never answered")
    written = {"pass": render_html(passed, drill.topology),
               "fail": render_html(failed, strict.topology),
               "error": render_html(error, drill.topology),
               "compare": render_differential_html(compare(passed, flipped)),
               "conformance": render_conformance_html(compare_all(
                   read_all(ROOT / DEFAULT_DIR, SITUATIONS), SITUATIONS))}
    for name, text in written.items():
        (out / f"{name}.html").write_text(text)
    return {name: out / f"{name}.html" for name in written}


def _luminance(rgb: RGB) -> float:
    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio (1: invisible, 21: black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_on_background(png: Path, box: list[float]) -> tuple[RGB, RGB]:
    """(background, text) colours inside `box` of a screenshot: the commonest pixel, and
    the pixel that differs most from it (the glyphs' core)."""
    with Image.open(png) as im:
        left, top, right, bottom = (round(v) for v in box)
        crop = im.convert("RGB").crop((left, top, right, bottom))
        raw = crop.tobytes()
    pixels: list[RGB] = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    background = Counter(pixels).most_common(1)[0][0]
    text = max(pixels, key=lambda p: sum(abs(x - y) for x, y in zip(p, background, strict=True)))
    return background, text


HUES = {"green": lambda r, g, b: g > r + 60, "red": lambda r, g, b: r > g + 60 and r > b + 60,
        "amber": lambda r, g, b: r > b + 60 and g > b + 60}


@pytest.mark.parametrize(("page", "hue"), [("pass", "green"), ("fail", "red"),
                                           ("compare", "red"), ("error", "amber"),
                                           ("conformance", "green")])
def test_the_banner_headline_is_readable(pages: dict[str, Path], page: str, hue: str,
                                         tmp_path: Path) -> None:
    """The headline ("FAIL — drill") and the line under it (backend, seed) stand out
    from the banner's green or red: no red text on a red banner."""
    found = measure(pages[page], tmp_path / "profile")
    png = screenshot(pages[page], tmp_path / f"{page}.png", tmp_path / "profile")
    for box in (found["banner"], found["banner_p"]):
        background, text = text_on_background(png, box)
        assert HUES[hue](*background), background
        assert contrast(background, text) >= 4.5, (page, background, text)


def _inside(inner: list[float], outer: list[float]) -> bool:
    return (inner[0] >= outer[0] - 0.5 and inner[2] <= outer[2] + 0.5
            and inner[1] >= outer[1] - 0.5 and inner[3] <= outer[3] + 0.5)


@pytest.mark.parametrize("page", ["pass", "fail"])
def test_the_timeline_keeps_every_label_on_the_page(pages: dict[str, Path], page: str,
                                                    tmp_path: Path) -> None:
    found: dict[str, Any] = measure(pages[page], tmp_path / "profile")
    assert len(found["svgs"]) == 2, "the whole drill and a close-up of the recovery"
    for svg in found["svgs"]:
        assert svg["box"][0] >= 0 and svg["box"][2] <= found["viewport"] <= WIDTH
        outside = [t["text"] for t in svg["texts"] if not _inside(t["box"], svg["box"])]
        assert not outside
        overflowing = [lab["text"] for lab in svg["labels"] if lab["length"] > lab["room"]]
        assert not overflowing, "a label spills out of its bar"
        assert all(_inside(m["box"], svg["box"]) for m in svg["marks"])
        assert all(m["tip"] for m in svg["marks"]), "every mark has its hover text"


def test_the_failing_timeline_shows_the_lost_writes_where_they_happened(
        pages: dict[str, Path], tmp_path: Path) -> None:
    """The strict protocol A drill loses the writes on the wire when cmp1 dies at 60 s:
    their marks sit at the fault's place on the axis, and the passed checks stay green
    next to the failed one."""
    close_up = measure(pages["fail"], tmp_path / "profile")["svgs"][1]
    lost = [m for m in close_up["marks"] if "ACKED BUT LOST" in m["tip"]]
    fault = next(m for m in close_up["marks"] if "host_crash" in m["tip"])
    assert lost and all(abs(m["box"][0] - fault["box"][0]) < 12 for m in lost), lost


def test_numbers_sit_under_their_headers(pages: dict[str, Path], tmp_path: Path) -> None:
    """Every column is aligned like its header (numbers right, text left)."""
    for page in ("pass", "fail", "compare"):
        tables = measure(pages[page], tmp_path / "profile")["tables"]
        for table in (t for t in tables if t["heads"]):  # the RTO bars have no header
            for row in table["rows"]:
                assert row == table["heads"][: len(row)], (page, table["heads"], row)
        if page != "compare":  # RTO, writes, seconds: right-aligned, headers too
            assert sum(t["heads"].count("right") for t in tables) >= 5


def test_conformance_numbers_sit_under_their_headers(pages: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """On the conformance page every column is aligned like its header; the index's counts
    are right-aligned, and so are the recorded and simulated values of a situation that
    records only numbers (the packet loss and tbf ones)."""
    index, *sections = measure(pages["conformance"], tmp_path / "profile")["tables"]
    assert index["heads"] == ["left", "left", "right", "right", "left"]
    assert len(sections) == len(list((ROOT / DEFAULT_DIR).glob("*.json")))
    for table in (index, *sections):
        for row in table["rows"]:
            assert row == table["heads"], (table["heads"], row)
    assert any(t["heads"][1:3] == ["right", "right"] for t in sections)
