"""Running random drills end to end on the simulator: verdicts, replay, reproduction."""

from __future__ import annotations

import pytest

from stackdrill.checks import CheckResult
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults import HostCrash, HostHang
from stackdrill.fuzz import Outcome, build, run_drill, run_seed
from stackdrill.fuzz.__main__ import main


def test_a_single_compute_crash_holds_every_invariant() -> None:
    """Scenario 1 as a random drill: the invariants pass when the stack behaves."""
    drill = build(11, "nova-drbd", [Step(at=0, recover=RecoverSpec()),
                                    Step(at=60, id="x", inject=HostCrash(host="cmp1",
                                                                         power_back=False))])
    outcome = run_drill(11, drill)
    assert outcome.ok, outcome.summary()
    names = {c.name for c in outcome.checks}
    assert {"fencing_order", "acked_writes", "exactly_once_or_declared", "single_writer",
            "divergence_bounded", "writes_progress"} <= names


def test_replay_is_identical_and_lab_name_only_changes_the_trace_header() -> None:
    """The same seed gives the same verdict and the same trace (xdist == serial)."""
    a, b = run_seed(2), run_seed(2)
    assert a.trace_sha256 == b.trace_sha256 and a.failed == b.failed
    c = run_seed(2, lab_name="random-2-gw1")
    assert c.failed == a.failed


def test_failure_summary_names_seed_and_reproduce_command() -> None:
    """A failed random drill says which seed, which check, and the command to replay it."""
    outcome = run_seed(1)
    failed = Outcome(outcome.seed, outcome.drill, outcome.damage,
                     [*outcome.checks, CheckResult.failed("single_writer", "vol-x: two writers")])
    text = failed.summary()
    assert not failed.ok and failed.failed == ["single_writer"]
    assert "seed 1: FAIL" in text and "stackdrill fuzz --seed 1 --shrink" in text
    assert "t=    0.0s recover" in text


def test_cli_replays_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m stackdrill.fuzz --seed N` prints the drill and its verdict; exit 0 on pass."""
    expected = 0 if run_seed(1).ok else 1
    assert main(["--seed", "1"]) == expected
    out = capsys.readouterr().out
    assert out.startswith("seed 1: ") and "declared damage:" in out


def test_skipped_fencing_is_caught_by_the_invariants() -> None:
    """A broken recovery (instances started elsewhere without fencing: --assume-fenced on a
    host that only hung) must fail the random-drill invariants: the thawed host's guests
    write their volumes while the evacuated copies do — two writers — and the fencing order
    is violated. The same schedule with fencing passes."""
    hang = [Step(at=60, id="h", inject=HostHang(host="cmp1")), Step(at=150, heal="h")]
    broken = run_drill(5, build(5, "nova-drbd", [Step(at=0, recover=RecoverSpec(
        assume_fenced=True)), *hang]))
    assert {"fencing_order", "single_writer"} <= set(broken.failed), broken.summary()
    sound = run_drill(5, build(5, "nova-drbd", [Step(at=0, recover=RecoverSpec()), *hang]))
    assert sound.ok, sound.summary()


def test_a_declared_instance_the_engine_gave_up_on_with_a_reason_is_excused() -> None:
    """Random seed 2202: web2 has nowhere to go (anti-affinity, cmp3 hung) and is declared
    unrecoverable; when cmp2 returns the engine resumes web2 there, cannot reach it on the
    overlay (cmp2's tunnel stays partitioned) and gives up: `failed`, with the reason. That
    is the engine giving the instance up with a reason, as the declaration asks; a failed
    instance the schedule does not declare still fails (the check's other tests)."""
    outcome = run_seed(2202)
    assert outcome.ok, outcome.summary()
    check = next(c for c in outcome.checks if c.name == "exactly_once_or_declared")
    assert "declared unrecoverable:" in check.detail and "web2 (VerifyGuest failed" in check.detail


def test_replay_piped_into_head_stops_quietly() -> None:
    """`python -m stackdrill.fuzz --seed N | head -0`: the reader is gone before the replay
    prints (a simulated drill takes about a second, the close is immediate); the replay
    stops with the shell's SIGPIPE code and no traceback on stderr."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "stackdrill.fuzz", "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # what `head` does once it has what it wants
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


def test_a_protocol_a_write_on_the_wire_at_the_end_is_on_the_peer_at_the_final_read() -> None:
    """Random seed 2585, shrunk: sto1's disk fails at 83.6 s (protocol A), so sto1 serves as
    a Diskless Primary through sto2. web1's last write is acknowledged 12 ms before the
    drill ends, while its packet is still on the wire; the final read comes after the run
    (real backends freeze the workloads while the kernel keeps delivering), so the write
    is on sto2. Before, the simulator read at the last instant and counted it lost."""
    from stackdrill.fuzz.schedule import generate

    drill = generate(2585).drill
    steps = tuple(s for s in drill.spec.schedule if s.recover or s.id == "f2")
    drill = drill.model_copy(update={"spec": drill.spec.model_copy(update={"schedule": steps})})
    outcome = run_drill(2585, drill)
    assert outcome.ok, outcome.summary()
