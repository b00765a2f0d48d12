"""What a reader of the HTML page and the topology picture sees for the drill's state:
compact tables that fit big drills, DRBD state at the end, remote attachments."""

from __future__ import annotations

import re

from report_samples import TOPOLOGY, sample_report

from stackdrill.report.html import render_html
from stackdrill.report.pictures import topology_dot


def test_recovery_steps_are_one_row_per_instance_with_a_total() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    steps = page[page.index("Recovery steps per instance"):]
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", steps)
    assert header is not None
    assert re.findall(r"<th>(.*?)</th>", header[1]) == [
        "instance", "storage", "compute", "verify", "total"]
    assert re.search(r"<td>web1</td><td class=\"num\">2\.5</td><td class=\"num\">9\.0</td>"
                     r"<td class=\"num\">1\.0</td><td class=\"num\">12\.5</td>", steps)
    assert re.search(r"<td>db1</td>.*?<td>—</td><td class=\"num\">16\.5</td>", steps)


def test_state_table_marks_what_changed_and_keeps_the_raw_json_folded() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    state = page[page.index("<h2>State before and after"):]
    assert "<td>DRBD r0</td><td>sto1</td><td>Primary/UpToDate</td><td>Primary/UpToDate</td>" \
        in state
    assert ('<tr class="warn"><td>LVM</td><td>vg0</td><td>{&quot;seqno&quot;: 4}</td>'
            '<td>{&quot;seqno&quot;: 6}</td>') in state
    assert "<details open" not in page and "<summary>after recovery (raw)</summary>" in page


def test_pictures_shrink_to_the_page_and_zoom_without_scripts() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    assert page.count('<input type="checkbox" class="zoom"><img') >= 1
    assert "<script" not in page


def test_topology_picture_names_remote_attachments_and_drbd_end_state() -> None:
    src = topology_dot(TOPOLOGY, sample_report())
    assert "web1 192.168.7.11 [vol1] ← cmp1 · remote volume" in src
    assert "end: sto1 Primary/UpToDate" in src
