"""Tolerances and the corpus files: what agrees, and recordings that are written stably
and read back with errors naming the file, the path in it and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackdrill.conformance import Observed, Recording, read, write
from stackdrill.conformance.model import EXACT, relative, within
from stackdrill.conformance.situations import SITUATIONS
from stackdrill.errors import InputError


def test_exact_tolerance_tells_a_boolean_from_a_number_and_none_from_zero() -> None:
    assert EXACT.agrees(1350, 1350)
    assert not EXACT.agrees(True, 1)
    assert not EXACT.agrees(None, 0)
    assert EXACT.agrees(None, None)
    assert EXACT.agrees("blackhole", "blackhole")


def test_absolute_and_relative_margins() -> None:
    assert within(50).agrees(362, 400) and not within(50).agrees(362, 413)
    assert relative(0.02).agrees(9.571, 9.564) and not relative(0.02).agrees(9.571, 9.3)
    assert not within(1).agrees(3, "3")  # a number never agrees with text


def recording(**fields: object) -> Recording:
    return Recording(situation="packet-loss-partial", backend="netns",
                     recorded_on="2026-01-02", versions={"kernel": "6.1"},
                     fields={k: Observed(value=v, unit="datagrams") for k, v in fields.items()})


def test_written_recordings_are_pretty_with_sorted_keys_and_read_back(tmp_path: Path) -> None:
    rec = recording(underlay_b_to_a_received=500, sent_per_direction=500,
                    underlay_a_to_b_received=351)
    path = write(tmp_path, rec)
    text = path.read_text()
    assert text.index('"sent_per_direction"') < text.index('"underlay_a_to_b_received"')
    assert text.startswith("{\n  ") and text.endswith("}\n")
    assert read(path, SITUATIONS) == rec
    write(tmp_path, rec)
    assert path.read_text() == text  # re-writing the same values changes nothing


def test_a_recording_with_a_field_of_the_wrong_kind_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "packet-loss-partial.json"
    data = json.loads(write(tmp_path, recording(sent_per_direction=1,
                                                underlay_a_to_b_received=1,
                                                underlay_b_to_a_received=1)).read_text())
    data["fields"]["sent_per_direction"]["value"] = [1, 2]
    data["recorded_on"] = "yesterday"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        read(path, SITUATIONS)
    text = err.value.render()
    assert f"{path}: recorded_on:" in text
    assert f"{path}: fields.sent_per_direction.value" in text


def test_a_field_the_model_does_not_cover_is_shown_with_why_and_never_counts_as_agreement(
        ) -> None:
    """A situation may declare fields the simulator deliberately does not reproduce, each
    with its reason: such a field neither makes the situation differ nor agree; a situation
    with nothing else covered does not agree."""
    from stackdrill.conformance.model import Comparison, FieldComparison

    def row(name: str, agrees: bool, why: str = "") -> FieldComparison:
        return FieldComparison(name, Observed(value=1), Observed(value=2), EXACT, agrees, why)

    def comparison(*rows: FieldComparison) -> Comparison:
        return Comparison("s", "what", "libvirt", {}, "2026-12-05", rows)

    covered_and_not = comparison(row("state", True), row("took_s", False, "handler run time"))
    assert covered_and_not.agrees and covered_and_not.differing == ()
    assert [r.verdict for r in covered_and_not.rows] == ["agree", "not modelled"]
    assert not comparison(row("took_s", False, "handler run time")).agrees
    assert not comparison(row("state", False), row("took_s", True, "why")).agrees
