"""Shell completion as the README documents it: `_STACKDRILL_COMPLETE=bash_source
stackdrill` prints a script bash accepts, and completing `stackdrill run nova-h` offers
the shipped drill (files too), `--backend n` the backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[3] / "src")


def _stackdrill(**env: str) -> str:
    done = subprocess.run([sys.executable, "-m", "stackdrill"],
                          env={**os.environ, "PYTHONPATH": SRC, **env}, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def test_bash_source_prints_a_completion_script_bash_accepts(tmp_path: Path) -> None:
    script = _stackdrill(_STACKDRILL_COMPLETE="bash_source")
    assert "complete -o nosort -F _stackdrill_completion stackdrill" in script
    (tmp_path / "c.bash").write_text(script)
    loaded = subprocess.run(["bash", "-c", f"source {tmp_path / 'c.bash'} && complete -p "
                             "stackdrill"], capture_output=True, text=True, check=False)
    assert loaded.returncode == 0 and "_stackdrill_completion" in loaded.stdout


def test_run_completes_shipped_drill_names_and_files() -> None:
    offered = _stackdrill(_STACKDRILL_COMPLETE="bash_complete",
                          COMP_WORDS="stackdrill run nova-h", COMP_CWORD="2").splitlines()
    assert offered == ["plain,nova-host-failure", "file,nova-h"]


def test_commands_and_backends_complete() -> None:
    assert _stackdrill(_STACKDRILL_COMPLETE="bash_complete", COMP_WORDS="stackdrill li",
                       COMP_CWORD="1").splitlines() == ["plain,lint", "plain,list"]
    assert _stackdrill(_STACKDRILL_COMPLETE="bash_complete",
                       COMP_WORDS="stackdrill run x --backend n",
                       COMP_CWORD="4").splitlines() == ["plain,netns"]
