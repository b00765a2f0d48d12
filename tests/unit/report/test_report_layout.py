"""What a reader of the HTML page and the topology picture sees for the drill's state:
compact tables that fit big drills, DRBD state at the end, remote attachments."""

from __future__ import annotations

from page_tables import table
from report_samples import TOPOLOGY, sample_report

from stackdrill.report.html import render_html
from stackdrill.report.pictures import topology_dot


def test_where_the_time_went_is_one_row_per_instance_adding_up_to_its_rto() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    spent = table(page, "Where the time went")
    assert spent.heads == ["instance", "detection (s)", "fencing (s)", "planning (s)",
                           "storage (s)", "compute (s)", "verify (s)", "RTO (s)"]
    assert spent.rows == [
        ("", ["web1", "6.0", "3.0", "0.5", "2.5", "9.0", "1.0", "22.0"]),
        ("", ["db1", "6.0", "3.0", "0.5", "4.5", "12.0", "—", "26.0"])]
    assert "Detection is measured from the moment the fault was injected" in page


def test_numeric_columns_are_right_aligned_with_their_headers() -> None:
    """A number column's header carries the same class as its cells, so they line up."""
    page = render_html(sample_report(), TOPOLOGY)
    instances = table(page, "Instances")
    numeric = [h for h, cls in zip(instances.heads, instances.head_classes, strict=True)
               if cls == "num"]
    assert numeric == ["acked writes", "lost writes", "RTO (s)"]
    for cells in instances.cell_classes:
        assert cells == instances.head_classes


def test_state_table_marks_what_changed_and_keeps_the_raw_json_folded() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    state = table(page, "State before and after")
    assert ("", ["DRBD r0", "sto1", "Primary/UpToDate", "Primary/UpToDate"]) in state.rows
    assert ("warn", ["LVM", "vg0", '{"seqno": 4}', '{"seqno": 6}']) in state.rows
    assert "<details open" not in page and "<summary>after recovery (raw)</summary>" in page


def test_pictures_shrink_to_the_page_and_zoom_without_scripts() -> None:
    page = render_html(sample_report(), TOPOLOGY)
    assert page.count('<input type="checkbox" class="zoom"><img') >= 1
    assert "<script" not in page


def test_topology_picture_names_remote_attachments_and_drbd_end_state() -> None:
    src = topology_dot(TOPOLOGY, sample_report())
    assert "web1 192.168.7.11 [vol1] ← cmp1 · remote volume" in src
    assert "end: sto1 Primary/UpToDate" in src
