"""Every recording of the real software in the corpus, reproduced by the simulator within
the tolerances its situation declares; a disagreement fails with the per-field table."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.conformance import DEFAULT_DIR, compare, read, table
from stackdrill.conformance.situations import SITUATIONS

RECORDINGS = sorted((Path(__file__).parents[2] / DEFAULT_DIR).glob("*.json"))


def test_the_corpus_is_not_empty() -> None:
    assert RECORDINGS, f"no recording under {DEFAULT_DIR}"


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_simulator_agrees_with_recording(path: Path) -> None:
    recording = read(path, SITUATIONS)
    comparison = compare(SITUATIONS[recording.situation], recording)
    if not comparison.agrees:
        pytest.fail(f"the simulator differs from the {recording.backend} recording "
                    f"({recording.recorded_on}, kernel {recording.versions.get('kernel', '?')}):"
                    f"\n{table(comparison)}", pytrace=False)


def test_every_situation_has_a_recording() -> None:
    """A situation nobody recorded on the real software is a model nobody checked: its
    simulator side must not ship as if it agreed."""
    recorded = {read(path, SITUATIONS).situation for path in RECORDINGS}
    assert sorted(set(SITUATIONS) - recorded) == []
