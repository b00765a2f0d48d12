"""The README shows the report as it looks: the screenshots exist, are small, and are the
ones scripts/report_screenshots.py writes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ("docs/report-pass.png", "docs/report-fail.png", "docs/timeline.png")


def test_readme_shows_the_report_screenshots_and_they_stay_small() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme))
    assert set(SHOTS) <= shown
    script = (ROOT / "scripts" / "report_screenshots.py").read_text()
    for shot in SHOTS:
        png = ROOT / shot
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert png.stat().st_size < 200 * 1024, shot
        assert Path(shot).name.removesuffix(".png").removeprefix("report-") in script
