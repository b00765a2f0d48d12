"""The pytest plugin as a user meets it: a scenario file run by pytest (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "lab" / "drills" / "quorum-two-node.yaml"
TOPOLOGY = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"


def test_a_short_scenario_using_run_drill_passes(pytester: pytest.Pytester) -> None:
    """The 15-line scenario a user writes: run a shipped drill, assert what they care
    about. The plugin is found through its entry point, with no conftest."""
    pytester.makepyfile(test_quorum=f"""
        import pytest

        @pytest.mark.backends("sim")
        def test_survivor_keeps_quorum(run_drill):
            report = run_drill({str(DRILL)!r})
            assert report.passed, [c.detail for c in report.failed_checks]
            assert report.backend == "sim" and report.drill == "quorum-two-node"
            assert report.state_after["quorum"]["drbd-pair"]["alice"]["quorate"] is True

        def test_seed_option_reaches_the_drill(run_drill):
            assert run_drill({str(DRILL)!r}).seed == 5
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--lab-seed", "5")
    result.assert_outcomes(passed=2)


def test_a_sim_only_scenario_is_skipped_with_the_reason_on_netns(
        pytester: pytest.Pytester) -> None:
    """--lab-backend netns: a scenario marked for sim is skipped (not run, not failed) and
    the skip says why; a drill the backend cannot realise is skipped naming what it lacks."""
    pytester.makepyfile(test_where=f"""
        import pytest

        @pytest.mark.backends("sim")
        def test_sim_only(run_drill):
            raise AssertionError("must not run on netns")

        @pytest.mark.backends("sim", "netns")
        def test_drill_needs_drbd(run_drill):
            run_drill({str(DRILL)!r})
            raise AssertionError("netns has no DRBD: must have been skipped")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--lab-backend", "netns")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([  # the reason, as -rs shows it
        "SKIPPED*test_where.py:3: scenario runs on sim; backend is netns",
        "SKIPPED*test_where.py:9: *quorum-two-node.yaml: *",  # the scenario's line
        "*topology drbd[[]0[]] (r0): backend 'netns' cannot realise drbd",
    ])


def test_a_topology_marked_lab_is_torn_down_even_when_the_test_fails(
        pytester: pytest.Pytester) -> None:
    """The `lab` fixture brings up @pytest.mark.topology(path) and destroys it after the
    test, pass or fail (the sim lab logs `lab destroy` in its trace when destroyed)."""
    pytester.makepyfile(test_lab=f"""
        import pytest

        LABS = []

        def destroyed(lab):
            return any(line.split()[1:3] == ["lab", "destroy"] for line in lab.trace())

        @pytest.mark.topology({str(TOPOLOGY)!r})
        def test_lab_is_up(lab):
            LABS.append(lab)
            assert lab.observe().running == {{"vm1": ["alice"], "vm2": ["bob"]}}
            assert not destroyed(lab)

        @pytest.mark.topology({str(TOPOLOGY)!r})
        def test_fails_inside_the_lab(lab):
            LABS.append(lab)
            raise AssertionError("boom")

        def test_both_labs_were_destroyed():
            assert len(LABS) == 2 and all(destroyed(lab) for lab in LABS)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_fails_inside_the_lab*boom*"])
    kept = pytester.runpytest("-p", "no:cacheprovider", "--lab-keep")
    kept.assert_outcomes(passed=1, failed=2)  # with --lab-keep nothing is destroyed
    kept.stdout.fnmatch_lines(["*FAILED*test_both_labs_were_destroyed*"])


def test_allure_results_have_a_step_per_phase_and_the_pictures(
        pytester: pytest.Pytester) -> None:
    """`pytest --alluredir DIR` on a scenario: a step per phase (fault, detection, fencing,
    planning, each instance, the DRBD resource's notable events, checks) and the
    attachments a reader opens (subprocess, so an Allure run around this test does not
    receive the inner results)."""
    import json

    third_node = ROOT / "lab" / "drills" / "third-node.yaml"
    pytester.makepyfile(test_third=f"""
        def test_third_node(run_drill):
            assert run_drill({str(third_node)!r}).passed
    """)
    out = pytester.path / "allure"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--alluredir={out}")
    result.assert_outcomes(passed=1)
    (found,) = [json.loads(p.read_text()) for p in out.glob("*-result.json")]
    lanes = [s["name"].split(":")[0] for s in found["steps"]]
    assert lanes == ["fault", "detection", "fencing", "planning", "instance", "instance",
                     "drbd", "checks"], lanes
    attachments = {a["name"]: a for a in found["attachments"]}
    for name, kind in (("topology", "image/png"), ("timeline", "image/png"),
                       ("state before (DRBD/LVM/quorum)", "application/json"),
                       ("state after (DRBD/LVM/quorum)", "application/json"),
                       ("report.json", "application/json")):
        assert attachments[name]["type"] == kind, attachments.keys()
        data = (out / attachments[name]["source"]).read_bytes()
        assert data.startswith(b"\x89PNG") if kind == "image/png" else json.loads(data)


def test_an_unknown_backend_is_a_usage_error_not_a_session_of_skips(
        pytester: pytest.Pytester) -> None:
    """A typo in --lab-backend stops pytest with a usage error (exit 4) that lists the
    known backends; CI must never go green having run nothing."""
    pytester.makepyfile(test_any="""
        def test_runs(run_drill):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--lab-backend", "netsn")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lab-backend: unknown backend 'netsn' (known: libvirt, "
                                 "netns, sim, vagrant)*"])
    pytester.makeini("[pytest]\nlab_backend = simm\n")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 4


def test_a_known_backend_unavailable_here_still_skips_with_its_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # without vagrant on PATH the vagrant backend is unavailable, wherever the test runs
    monkeypatch.setenv("PATH", str(pytester.path))
    pytester.makepyfile(test_vm=f"""
        def test_on_vagrant(run_drill):
            run_drill({str(DRILL)!r})
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--lab-backend", "vagrant")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


INFRA_SCENARIOS = """
    import pytest
    from stackdrill.errors import LabNotReadyError

    def test_lab_never_booted():
        raise LabNotReadyError("cmp1 booting (guest agent silent): no progress for 90 s")

    def test_recovery_ok():
        pass
"""


def test_a_lab_that_was_not_ready_is_an_infrastructure_error_and_exits_3(
        pytester: pytest.Pytester) -> None:
    """A scenario whose lab raised an InfrastructureError is not a FAIL: it is reported as
    INFRA-ERROR with the "lab not ready: ..." reason, and a session with no other failure
    exits 3 (stackdrill's infrastructure-error code), also under xdist."""
    pytester.makepyfile(test_infra=INFRA_SCENARIOS)
    for extra in ([], ["-n", "2"]):
        result = pytester.runpytest("-p", "no:cacheprovider", "-rA", *extra)
        assert result.ret == 3, result.stdout.str()
        result.stdout.fnmatch_lines([
            "*INFRA-ERROR*test_lab_never_booted*lab not ready: cmp1 booting*",
            "*1 passed*1 infrastructure error*"])
        assert "FAILED" not in result.stdout.str()


def test_a_real_failure_beside_an_infrastructure_error_still_exits_1(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_infra=INFRA_SCENARIOS + """
    def test_recovery_broken():
        assert False, "inst-a runs twice"
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml", "out.xml")
    assert result.ret == 1
    xml = (pytester.path / "out.xml").read_text()
    assert 'name="stackdrill_infrastructure_error" value="lab not ready: cmp1' in xml


def test_a_session_without_labs_loads_no_engine_nor_database_code(
        pytester: pytest.Pytester) -> None:
    """The plugin loads in every pytest process, the xdist controller too, which never
    runs a test: only a test that uses a lab pays for the recovery engine's imports
    (SQLAlchemy, Alembic, the reports), ~0.8 s of CPU per process."""
    pytester.makepyfile(test_plain="""
        import sys

        def test_nothing_heavy_was_imported():
            heavy = ("sqlalchemy", "alembic", "stackdrill.recovery", "stackdrill.report")
            assert [m for m in heavy if m in sys.modules] == []
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
