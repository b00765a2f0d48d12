"""Topology and timeline pictures: real PNGs (Allure attaches them), and a clear error
without graphviz."""

from __future__ import annotations

import struct

import pytest
from report_samples import TOPOLOGY, sample_report

from stackdrill.report import TimelineEvent, pictures
from stackdrill.report.pictures import PictureError, timeline_png, topology_dot, topology_png

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert png.startswith(PNG) and png[12:16] == b"IHDR"
    w, h = struct.unpack(">II", png[16:24])
    return w, h


def test_timeline_png_has_a_lane_per_instance() -> None:
    """More instances mean more lanes: the picture grows in height, not in confusion."""
    r = sample_report()
    png = timeline_png(r)
    assert png.startswith(PNG)
    more = r.model_copy(
        update={
            "timeline": (
                *r.timeline,
                *(
                    TimelineEvent(
                        at=20.0 + i, end=30.0 + i, lane=f"instance:vm{i}", label="compute"
                    )
                    for i in range(10)
                ),
            )
        }
    )
    assert _size(timeline_png(more))[1] > _size(png)[1]


def test_timeline_folds_hundreds_of_instances() -> None:
    """A 200-instance drill stays a readable picture (slowest lanes kept, rest folded)."""
    r = sample_report()
    many = r.model_copy(
        update={
            "timeline": tuple(
                TimelineEvent(at=20.0, end=21.0 + i, lane=f"instance:vm{i:03}", label="compute")
                for i in range(200)
            )
        }
    )
    w, h = _size(timeline_png(many))
    assert h < 2500 and w > 1000


def test_topology_dot_shows_moves_and_faults() -> None:
    """With a report: the crashed host is marked, moved guests sit on their new host."""
    src = topology_dot(TOPOLOGY, sample_report())
    assert "host_crash at 10s" in src
    assert "web1 192.168.7.11 [vol1] ← cmp1" in src
    assert "DRBD r0 · protocol C" in src and "VG vg0 [clustered locking]" in src
    assert "overlay tenant" in src


@pytest.mark.skipif(not pictures.dot_available(), reason="graphviz 'dot' not installed")
def test_topology_png_renders() -> None:
    png = topology_png(TOPOLOGY, sample_report())
    assert png.startswith(PNG)
    w, h = _size(png)
    assert w > 300 and h > 150


def test_missing_dot_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pictures, "dot_available", lambda: False)
    with pytest.raises(PictureError, match="apt-get install graphviz"):
        topology_png(TOPOLOGY)
