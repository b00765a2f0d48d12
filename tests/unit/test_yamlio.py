"""Hostile input files: bombs, huge files, deep nesting and odd keys end in exit 2 with
`file: problem`, in bounded time and memory, and never echo more than a few short keys."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackdrill.errors import InputError, TopologyError
from stackdrill.topology import load_topology
from stackdrill.yamlio import MAX_FILE_BYTES, read_mapping

ROOT = Path(__file__).resolve().parents[2]
NOVA = ROOT / "lab" / "topologies" / "nova-drbd.yaml"


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: 9 levels of 9 aliases each, ~360 bytes, 9**9 strings expanded."""
    lines = ["name: bomb", f"topology: {NOVA}", 'a0: &a0 ["lol","lol","lol","lol","lol",'
             '"lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"description: *a{levels}")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 12) -> str:
    """Merge keys copy the merged mapping's pairs: exponential without aliases in lists."""
    lines = ["name: bomb", "a0: &a0 {x: 1}"]
    for i in range(1, levels + 1):
        keys = ",".join([f"<<: *a{i - 1}"] + [f"k{j}: *a{i - 1}" for j in range(1, 9)])
        lines.append(f"a{i}: &a{i} {{{keys}}}")
    return "\n".join(lines) + "\n"


def refused(path: Path) -> str:
    with pytest.raises(InputError) as info:
        read_mapping(path, InputError)
    (line,) = info.value.render().splitlines()
    assert line.startswith(f"{path}: ")
    return line


@pytest.mark.parametrize(("text", "says"), [
    (alias_bomb(), "expands to more than"),
    (merge_bomb(), "expands to more than"),
    ("name: x\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 64"),
    ("seed: " + "1" * 5000 + "\n", "a value YAML cannot read"),
    ("name: x\nwhen: 2001-13-45\n", "a value YAML cannot read"),
    ("? [a, b]\n: 1\n", "a key must be a plain value"),
], ids=["alias-bomb", "merge-bomb", "deep", "huge-int", "bad-date", "list-key"])
def test_bombs_are_refused_fast_with_a_message(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.monotonic()
    assert says in refused(path)
    assert time.monotonic() - started < 3


def test_a_file_larger_than_the_cap_is_not_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as out:
        out.write('name: big\ndescription: "')
        out.write("x" * (MAX_FILE_BYTES + 10))
        out.write('"\n')
    assert "larger than 1024 KiB" in refused(path)


def test_a_device_or_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in refused(fifo)  # a FIFO with no writer would block
    assert "not a regular file" in refused(Path("/dev/zero"))


def test_validate_cli_bounds_time_and_memory_of_every_bomb(tmp_path: Path) -> None:
    """The real command, in a child with a 1 GiB address-space limit: exit 2, a message
    per file, no traceback, in a few seconds."""
    files = []
    for name, text in [("alias", alias_bomb()), ("merge", merge_bomb()),
                       ("deep", "a: " + "[" * 100_000 + "]" * 100_000 + "\n")]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        files.append(str(path))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stackdrill", "validate", *files],
                          capture_output=True, text=True, timeout=60, preexec_fn=limit,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 3
    assert time.monotonic() - started < 30


def fake_shadow(tmp_path: Path, users: int = 20) -> Path:
    """A file shaped like /etc/shadow: YAML reads each line as a key of a mapping."""
    path = tmp_path / "shadow"
    path.write_text("".join(f"user{i}:$6$salt{i}$" + "h" * 80 + ":19000:0:99999:7:::\n"
                            for i in range(users)))
    return path


def test_a_file_that_is_not_a_topology_is_refused_without_its_content(tmp_path: Path) -> None:
    shadow = fake_shadow(tmp_path)
    with pytest.raises(TopologyError) as info:
        load_topology(shadow)
    text = info.value.render()
    assert text == f"{shadow}: not a topology: none of its keys is a topology's " \
                   "(name, description, hosts, networks, ...)"
    drill = tmp_path / "d.yaml"
    drill.write_text(f"name: d\ntopology: {shadow}\nexpect: [{{check: exactly_once}}]\n")
    done = subprocess.run([sys.executable, "-m", "stackdrill", "validate", str(drill)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "$6$" not in done.stderr and "user1" not in done.stderr
    assert "not a topology" in done.stderr


def test_unknown_keys_are_capped_in_length_and_count(tmp_path: Path) -> None:
    """A mapping with some topology keys and many odd ones: five keys, each cut to 40
    characters and escaped, then a count."""
    path = tmp_path / "t.yaml"
    odd = [f"user{i}:$6$" + "h" * 80 + "\x1b[31m" for i in range(12)]
    path.write_text("name: t\nhosts: [{name: a, roles: [compute]}]\n"
                    + "".join(f'"{k.replace(chr(27), chr(92) + "e")}": 1\n' for k in odd))
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    lines = info.value.render().splitlines()
    assert len(lines) == 6
    assert lines[-1] == f"{path}: and 7 more unknown keys"
    for line in lines[:5]:
        key = line.removeprefix(f"{path}: ").removesuffix(": unknown key")
        assert len(key) <= 40 and "..." in key  # reprlib cuts in the middle
        assert "\x1b" not in line and "\\x1b" in line
