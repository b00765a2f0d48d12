"""Regenerate the README's report screenshots with headless Chromium: a passing and a
failing drill's report (real sim runs), the failing run's timeline, and the summary of
the acceptance gate on two-node-clvm (a real gate run on the simulator).

Run: .venv/bin/python scripts/report_screenshots.py   (needs chromium; writes docs/*.png)
The same pages are rendered and checked in tests/unit/report/test_report_in_browser.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "report"))

import drill_runs  # noqa: E402  (the tests' helpers: one way to run the drills)
from browser import chromium, measure, screenshot  # noqa: E402

from stackdrill.report.html import render_html  # noqa: E402

DOCS = ROOT / "docs"
SHOWN_WIDTH = 960  # pixels in the README; the page is laid out at 1280


def _save(im: Image.Image, box: tuple[int, int, int, int], out: Path,
          width: int = SHOWN_WIDTH) -> None:
    """Crop, shrink to `width` and store as a 256-colour PNG (small; octree keeps the
    legend's small swatches in their own colours)."""
    part = im.convert("RGB").crop(box)
    if part.width != width:
        part = part.resize((width, round(part.height * width / part.width)),
                           Image.Resampling.LANCZOS)
    part.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        out, optimize=True)
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} KiB")


def gate_summary(tmp: Path) -> None:
    """The top of `stackdrill gate two-node-clvm --report DIR`'s page: the banner and the
    verdict per drill."""
    from stackdrill.cli.gate import write_gate_report
    from stackdrill.gate import run_gate
    from stackdrill.gate.run import plan_gate
    from stackdrill.shipped import topology_path
    from stackdrill.topology.load import load_topology

    path = topology_path("two-node-clvm")
    assert path is not None
    topology = load_topology(path)
    result = run_gate(topology, topology_source="lab/topologies/two-node-clvm.yaml")
    write_gate_report(tmp / "gate", result, topology, plan_gate(topology))
    page = tmp / "gate" / "gate.html"
    with Image.open(screenshot(page, tmp / "gate.png", tmp / "profile")) as im:
        _save(im, (0, 0, im.width, 540), DOCS / "gate.png")


def main() -> None:
    if chromium() is None:
        raise SystemExit("report_screenshots: chromium is not installed")
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stackdrill-shots-") as tmp_name:
        tmp = Path(tmp_name)
        passed, drill = drill_runs.passing()
        failed, strict = drill_runs.failing(tmp)
        for name, report, topology in (("pass", passed, drill.topology),
                                       ("fail", failed, strict.topology)):
            page = tmp / f"{name}.html"
            page.write_text(render_html(report, topology))
            found = measure(page, tmp / "profile")
            with Image.open(screenshot(page, tmp / f"{name}.png", tmp / "profile")) as im:
                full, close_up = found["svgs"]
                _save(im, (0, 0, im.width, round(full["box"][3]) + 12),
                      DOCS / f"report-{name}.png")
                if name == "fail":
                    _save(im, (0, round(close_up["box"][1]) - 44, im.width,
                               round(close_up["box"][3]) + 12), DOCS / "timeline.png",
                          width=im.width)
        gate_summary(tmp)


if __name__ == "__main__":
    main()
