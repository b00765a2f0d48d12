"""The lab fixtures as a scenario author meets them (pytester): one lab per test, per
module or per session, each torn down at the end of its scope, pass or fail; faults
healed between tests; lab names the same in every process."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"

# Shared by the inner test modules: every lab a test saw, in order.
CONFTEST = """
import pytest

SEEN = []

def destroyed(lab):
    return any(line.split()[1:3] == ["lab", "destroy"] for line in lab.trace())

@pytest.fixture
def seen():
    return SEEN
"""

PARTITION = '{"kind": "partition", "groups": [["alice"], ["bob"]], "network": "eth1"}'


def test_a_module_lab_is_brought_up_once_for_the_module_and_torn_down_after_it(
        pytester: pytest.Pytester) -> None:
    """Three tests (one failing) share one lab, standing until the module's last test;
    the next module finds it destroyed, and gets its own."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a_shared=f"""
        import pytest
        from conftest import destroyed

        pytestmark = pytest.mark.topology({str(TOPOLOGY)!r})

        def test_first(module_lab, seen):
            seen.append(module_lab)
            assert module_lab.observe().running == {{"vm1": ["alice"], "vm2": ["bob"]}}

        def test_fails(module_lab, seen):
            seen.append(module_lab)
            raise AssertionError("boom")

        def test_last(module_lab, seen):
            seen.append(module_lab)
            assert not destroyed(module_lab)
    """, test_b_after=f"""
        import pytest
        from conftest import destroyed

        pytestmark = pytest.mark.topology({str(TOPOLOGY)!r})

        def test_one_lab_for_the_whole_first_module_and_it_is_gone(module_lab, seen):
            first = seen[:3]
            assert len(first) == 3 and all(lab is first[0] for lab in first)
            assert destroyed(first[0])
            assert module_lab is not first[0] and not destroyed(module_lab)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_fails*boom*"])


def test_faults_injected_on_a_shared_lab_are_healed_before_the_next_test(
        pytester: pytest.Pytester) -> None:
    """`faults` works on the lab the test asked for; what it injected is healed when the
    test ends (here: one that fails and never heals its partition)."""
    pytester.makepyfile(test_faults=f"""
        import pytest

        pytestmark = pytest.mark.topology({str(TOPOLOGY)!r})

        def test_partitions_and_fails(module_lab, faults):
            assert faults.lab is module_lab
            faults.inject({PARTITION})
            raise AssertionError("left the partition in force")

        def test_starts_without_it(module_lab, faults):
            trace = module_lab.trace()
            healed = [line for line in trace if "fault heal fault=partition" in line]
            assert len(healed) == 1
            assert "lab destroy" not in "".join(trace)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_a_session_lab_is_shared_across_modules_and_torn_down_at_the_end(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST + """
from pathlib import Path

def pytest_sessionfinish(session):
    Path("destroyed.txt").write_text(str([destroyed(lab) for lab in SEEN]))
""")
    test = """
        def test_uses_it(session_lab, seen):
            seen.append(session_lab)
            assert all(lab is session_lab for lab in seen)
    """
    pytester.makepyfile(test_one=test, test_two=test)
    result = pytester.runpytest("-p", "no:cacheprovider", "--lab-topology", str(TOPOLOGY))
    result.assert_outcomes(passed=2)
    assert (pytester.path / "destroyed.txt").read_text() == "[True, True]"
    without = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    without.assert_outcomes(skipped=2)
    without.stdout.fnmatch_lines(["*no topology: session_lab needs --lab-topology*"])


def test_a_topology_marked_on_a_test_using_module_lab_is_an_error_not_ignored(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=f"""
        import pytest

        @pytest.mark.topology({str(TOPOLOGY)!r})
        def test_marked(module_lab):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.topology on a test has no effect on "
                                 "`module_lab`: mark the module*"])


def test_a_lab_is_named_and_traced_alike_in_every_process(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pytest processes with different hash salts (PYTHONHASHSEED) give the `lab`
    fixture's lab the same name, so the same trace hash: a run replays anywhere."""
    pytester.makepyfile(test_named=f"""
        import pytest
        from pathlib import Path

        @pytest.mark.topology({str(TOPOLOGY)!r})
        def test_write_name(lab):
            Path("lab.txt").write_text(f"{{lab.name}} {{lab.trace_sha256()}}")
    """)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this run's own worker id
    seen = []
    for salt in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", salt)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        seen.append((pytester.path / "lab.txt").read_text())
    assert seen[0].startswith("two-node-clvm-gw0-") and seen[0] == seen[1], seen


def test_a_conftest_lab_seed_reaches_the_lab_and_the_junit_properties(
        pytester: pytest.Pytester) -> None:
    """`lab_seed` is a fixture a conftest can override (as with any pytest fixture): the
    lab fixtures bring their labs up with it and the test records it."""
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def lab_seed():
            return 9
    """)
    pytester.makepyfile(test_seeded=f"""
        import pytest

        pytestmark = pytest.mark.topology({str(TOPOLOGY)!r})

        def test_seeded(module_lab):
            assert "seed=9" in module_lab.trace()[0].split()
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml", "out.xml")
    result.assert_outcomes(passed=1)
    assert '<property name="stackdrill_seed" value="9" />' in (
        pytester.path / "out.xml").read_text()


def test_pytest_help_explains_the_lab_options_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "stackdrill disaster drills (the CLI's options with a lab- prefix*",
        "*--lab-backend=NAME*backend every lab and drill runs on*",
        "*--lab-topology=PATH*",
        "*--lab-seed=N*",
        "*--lab-keep*",
    ])


def test_the_fixtures_are_documented_in_pytest_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_any="def test_any():\n    pass\n")
    out = pytester.runpytest("--fixtures").stdout.str()
    for name, says in (("faults", "healed when the test ends"),
                       ("lab_seed", "None when neither is"),
                       ("module_lab", "torn down after the module's"),
                       ("session_lab", "torn down when the session ends")):
        assert f"\n{name} " in out or f"\n{name} [" in out, name
        assert says in " ".join(out.split()), (name, says)
