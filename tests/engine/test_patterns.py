"""Source globs and date patterns, as pure functions."""

from __future__ import annotations

import pytest

from conveyor.domain.errors import RequestParamsInvalid
from conveyor.engine.patterns import compile_glob, format_date_pattern

# 2024-02-16T23:30:00Z
RUNTIME = 1_708_126_200_000_000


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.txt", "a.txt", True),
        ("*.txt", "sub/a.txt", False),
        ("*.txt", ".hidden.txt", True),
        ("**/*.txt", "a.txt", True),
        ("**/*.txt", "x/y/a.txt", True),
        ("**/*.txt", "x/y/a.csv", False),
        ("sub/**", "sub/x/y.bin", True),
        ("sub/**", "other/x.bin", False),
        ("a?c.log", "abc.log", True),
        ("a?c.log", "a/c.log", False),
        ("report-[0-9].csv", "report-7.csv", True),
        ("report-[!0-9].csv", "report-7.csv", False),
        ("report-[!0-9].csv", "report-x.csv", True),
        ("[.csv", "[.csv", True),
        ("data/2024*/*.csv", "data/2024-02/a.csv", True),
        ("data/2024*/*.csv", "data/2023-02/a.csv", False),
        ("exact.txt", "exact.txt", True),
        ("exact.txt", "exactXtxt", False),
    ],
)
def test_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert compile_glob(pattern).matches(path) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix", "depth"),
    [
        ("*.txt", "", 1),
        ("in/sub/*.txt", "in/sub", 1),
        ("in/*/x.txt", "in", 2),
        ("in/**/x.txt", "in", None),
        ("in/exact.txt", "in", 1),
    ],
)
def test_glob_walk_bounds(pattern: str, prefix: str, depth: int | None) -> None:
    glob = compile_glob(pattern)
    assert (glob.prefix, glob.depth) == (prefix, depth)


def test_date_patterns_use_the_runtime_in_the_time_zone() -> None:
    assert format_date_pattern("out/%Y/%m/%d-%H%M", RUNTIME) == "out/2024/02/16-2330"
    assert format_date_pattern("out/%Y-%m-%d", RUNTIME, "Tokyo") == "out/2024-02-17"
    assert format_date_pattern("out/%Y-%m-%d", RUNTIME, "America/New_York") == "out/2024-02-16"
    assert format_date_pattern("plain/folder", RUNTIME, "Tokyo") == "plain/folder"
    with pytest.raises(RequestParamsInvalid):
        format_date_pattern("out/%Y", RUNTIME, "Mars/Olympus")
