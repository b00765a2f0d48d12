"""What CI reads from `pytest --junitxml`: each test case names the backend, seed, drill
and trace of the labs it ran, so a red CI job says how to replay it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "lab" / "drills" / "quorum-two-node.yaml"
TOPOLOGY = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"


def properties(xml: Path) -> dict[str, list[tuple[str, str]]]:
    """Test name -> its (name, value) properties, in order."""
    cases = ET.parse(xml).getroot().iter("testcase")
    return {case.attrib["name"]: [(p.attrib["name"], p.attrib["value"])
                                  for p in case.iter("property")] for case in cases}


def test_junit_properties_name_backend_seed_drill_and_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ci=f"""
        import pytest
        from pathlib import Path

        def test_drill(run_drill):
            report = run_drill({str(DRILL)!r})
            Path("trace.txt").write_text(report.trace_sha256)
            assert report.passed

        @pytest.mark.topology({str(TOPOLOGY)!r})
        def test_on_a_lab(lab):
            pass

        def test_no_lab():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--lab-seed", "7",
                                "--junitxml", "out.xml")
    result.assert_outcomes(passed=3)
    found = properties(pytester.path / "out.xml")
    trace = (pytester.path / "trace.txt").read_text()
    assert len(trace) == 64
    assert found["test_drill"] == [
        ("stackdrill_backend", "sim"), ("stackdrill_seed", "7"),
        ("stackdrill_drill", "quorum-two-node"), ("stackdrill_trace_sha256", trace)]
    assert found["test_on_a_lab"] == [("stackdrill_backend", "sim"), ("stackdrill_seed", "7")]
    assert found["test_no_lab"] == []


def test_junit_properties_reach_the_xml_under_xdist(pytester: pytest.Pytester) -> None:
    """With -n the XML is written by the controller from the workers' reports."""
    pytester.makepyfile(test_ci=f"""
        def test_drill(run_drill):
            assert run_drill({str(DRILL)!r}).passed
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--junitxml", "out.xml")
    result.assert_outcomes(passed=1)
    found = dict(properties(pytester.path / "out.xml")["test_drill"])
    assert found["stackdrill_backend"] == "sim" and found["stackdrill_seed"] == "1"
    assert len(found["stackdrill_trace_sha256"]) == 64
