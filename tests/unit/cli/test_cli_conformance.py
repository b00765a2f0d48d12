"""`stackdrill conformance`: per situation recorded vs simulated; exit 0 when all agree,
1 naming what differs, 2 for a malformed recording (`file: path: problem`, no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "conformance" / "recordings"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["conformance", *args])
    return result.exit_code, result.stdout, result.stderr


def copy_corpus(tmp_path: Path) -> Path:
    target = tmp_path / "recordings"
    shutil.copytree(CORPUS, target)
    return target


def test_the_shipped_corpus_agrees_and_every_situation_is_shown() -> None:
    code, out, _err = invoke("--dir", str(CORPUS))
    assert code == 0, out
    for path in CORPUS.glob("*.json"):
        assert path.stem in out
    assert "AGREE" in out


def test_json_lists_recorded_and_simulated_per_field() -> None:
    code, out, _err = invoke("--dir", str(CORPUS), "--json", "packet-loss-whole")
    assert code == 0
    data = json.loads(out)
    assert data["agrees"] is True
    [situation] = data["situations"]
    rows = {f["field"]: f for f in situation["fields"]}
    assert rows["underlay_b_to_a_received"]["recorded"] == 100
    assert rows["underlay_b_to_a_received"]["simulated"] == 100
    assert situation["versions"]["kernel"]


def test_a_recording_the_simulator_does_not_reproduce_exits_1_naming_it(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path)
    path = corpus / "packet-loss-whole.json"
    data = json.loads(path.read_text())
    data["fields"]["underlay_b_to_a_received"]["value"] = 0  # as if arriving packets died
    path.write_text(json.dumps(data))
    code, out, _err = invoke("--dir", str(corpus))
    assert code == 1
    assert "DIFFER 1 of" in out and "packet-loss-whole" in out.split("DIFFER 1 of")[1]


def test_a_malformed_recording_is_bad_input_naming_file_and_path(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path)
    path = corpus / "tbf-overlay-ratio.json"
    data = json.loads(path.read_text())
    del data["fields"]["overlay_mbit_s"]
    data["fields"]["speed"] = {"value": 1}
    path.write_text(json.dumps(data))
    (corpus / "vxlan-mtu-sender-low.json").write_text("{")
    code, _out, err = invoke("--dir", str(corpus))
    assert code == 2
    assert f"{path}: fields.overlay_mbit_s: missing" in err
    assert f"{path}: fields.speed: the situation declares no such field" in err
    assert "vxlan-mtu-sender-low.json: not JSON" in err
    assert "Traceback" not in err


def test_an_unknown_situation_name_is_bad_input() -> None:
    code, _out, err = invoke("--dir", str(CORPUS), "no-such-situation")
    assert code == 2
    assert "no-such-situation: no recording of this situation" in err


def test_report_writes_the_comparison_as_a_page_or_as_json(tmp_path: Path) -> None:
    """`--report PATH.html` writes one self-contained page (the verdict, every situation's
    fields recorded vs simulated, the versions it was recorded with); `.json` the same as
    `--json`; any other extension is refused before anything runs (exit 2)."""
    page = tmp_path / "conformance.html"
    code, _out, _err = invoke("tbf-overlay-ratio", "--report", str(page))
    html = page.read_text()
    assert code == 0 and "AGREE — simulator vs recordings of the real software" in html
    assert 'id="tbf-overlay-ratio"' in html and "kernel " in html
    # the index links every situation to its table and counts its fields
    assert '<td><a href="#tbf-overlay-ratio">tbf-overlay-ratio</a></td><td>netns</td>' \
           '<td class="num">3 of 3</td><td class="num">0</td>' in html
    assert "<link" not in html and "<script src" not in html  # nothing to fetch
    data = tmp_path / "conformance.json"
    code, _out, _err = invoke("tbf-overlay-ratio", "--report", str(data))
    assert code == 0 and json.loads(data.read_text())["agrees"] is True
    code, _out, err = invoke("--report", str(tmp_path / "c.txt"))
    assert code == 2 and "extension must be .json or .html" in err
