"""Property tests (hypothesis): whatever a topology file holds, loading it ends in a
Topology or in one `file: path: problem` line per problem, never another exception and
never a raw newline from the input breaking a line (what the CLI prints, exit 2)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_topology_input import with_

import stackdrill.drill  # noqa: F401  (every union registers its tags, as in a CLI process)
from stackdrill.errors import InputError, TopologyError
from stackdrill.topology import Topology, parse_topology
from stackdrill.yamlio import parse_mapping

# reproducible in CI and nothing written into the checkout (.hypothesis/)
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
NAMED = [("hosts", 0, "name"), ("networks", 0, "name"), ("volumes", 0, "name"),
         ("instances", 0, "name"), ("drbd", 0, "name"), ("volume_groups", 0, "name")]
# names a careless or hostile file may carry: shell and YAML characters, newlines,
# non-ASCII letters, long ones
HOSTILE = st.text(alphabet=st.sampled_from("aZz09-_.;|&$`'\" \n\t\r:/#{}[]*!é\x00"),
                  min_size=0, max_size=40) | st.text(max_size=40)


def one_line_per_problem(exc: InputError, file: str) -> None:
    lines = str(exc).split("\n")
    assert len(lines) == len(exc.problems) >= 1
    assert all(line.startswith(f"{file}: ") for line in lines)


@PROPERTY
@given(where=st.sampled_from(NAMED), name=HOSTILE)
def test_a_name_is_accepted_only_in_the_name_form(where: tuple[str | int, ...],
                                                  name: str) -> None:
    data = with_(where, name)
    try:
        topology = parse_topology(data, "t.yaml")
    except TopologyError as exc:
        one_line_per_problem(exc, "t.yaml")
        if not NAME.fullmatch(name):  # refused where it stands, not somewhere downstream
            path = f"{where[0]}[{where[1]}].{where[2]}"
            assert any(p.path == path for p in exc.problems), str(exc)
        return
    assert isinstance(topology, Topology) and NAME.fullmatch(name)


@PROPERTY
@given(text=st.text(max_size=400))
@example(text="\x1f")  # what hypothesis found first: PyYAML's ReaderError is two lines
@example(text="name: t\nhosts: [\x00]\n")
def test_any_text_is_a_mapping_or_an_input_error(text: str) -> None:
    try:
        data = parse_mapping(text, "t.yaml", TopologyError)
    except TopologyError as exc:
        one_line_per_problem(exc, "t.yaml")
        return
    assert isinstance(data, dict)


@settings(PROPERTY, max_examples=25)
@given(depth=st.integers(min_value=1, max_value=2000),
       open_close=st.sampled_from(["[]", "{}", "-"]))
def test_deep_nesting_is_refused_with_a_clear_error_not_a_crash(depth: int,
                                                                open_close: str) -> None:
    if open_close == "-":  # block style: "- - - ... x"
        text = "k: " + "- " * depth + "x\n"
    else:
        text = "k: " + open_close[0] * depth + open_close[1] * depth + "\n"
    try:
        data = parse_mapping(text, "t.yaml", TopologyError)
    except TopologyError as exc:
        one_line_per_problem(exc, "t.yaml")
        return
    assert isinstance(data, dict) and depth < 1000  # a deep document is never accepted

