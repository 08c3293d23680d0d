"""The two pattern languages of automations: source globs, and tokens in destinations.

Pure functions; `conveyor.engine.planner` applies them to the storage's files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC

from conveyor.domain.automations import resolve_time_zone
from conveyor.domain.destinations import Context, parse, render

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled source glob, relative to the automation's `path`.

    `*` and `?` stay within one folder level; `**` matches across levels, and
    `**/` also matches no folder at all (`**/*.txt` matches `a.txt`). `[abc]`
    and `[!abc]` are character classes. Hidden files match like any other.
    """

    text: str
    regex: re.Pattern[str]
    # Folders before the first segment with a wildcard: where the walk starts.
    prefix: str
    # How many levels below `prefix` a match can be; None when `**` is used.
    depth: int | None

    def matches(self, relative: str) -> bool:
        return self.regex.fullmatch(relative) is not None


def _char_class(pattern: str, start: int) -> tuple[str, int] | None:
    """The regex of the class opening at `start`, and the index after it; None if unclosed."""
    end = start + 1
    if end < len(pattern) and pattern[end] == "!":
        end += 1
    if end < len(pattern) and pattern[end] == "]":
        end += 1  # a leading ] is a member, as in shell globs
    end = pattern.find("]", end)
    if end == -1:
        return None
    body = pattern[start + 1 : end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\").replace("^", "\\^")
    # A class never matches the folder separator, like `*` and `?`.
    return ("[^/" + body + "]" if negate else "(?!/)[" + body + "]"), end + 1


def compile_glob(pattern: str) -> Glob:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        at_segment_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_segment_start:
            if pattern.startswith("**/", i):
                out.append("(?:[^/]*/)*")
                i += 3
                continue
            if i + 2 == n:
                out.append(".*")
                i += 2
                continue
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
            while i + 1 < n and pattern[i + 1] == "*":
                i += 1
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            found = _char_class(pattern, i)
            if found is not None:
                out.append(found[0])
                i = found[1]
                continue
            out.append(re.escape(char))
        else:
            out.append(re.escape(char))
        i += 1
    segments = pattern.split("/")
    literal: list[str] = []
    for segment in segments:
        if _GLOB_CHARS & set(segment):
            break
        literal.append(segment)
    if len(literal) == len(segments):
        # No wildcard at all: the pattern names one file.
        literal = literal[:-1]
    rest = segments[len(literal) :]
    depth = None if any("**" in segment for segment in rest) else len(rest)
    return Glob(pattern, re.compile("".join(out), re.DOTALL), "/".join(literal), depth)


def format_date_pattern(text: str, runtime: int, time_zone: str = "") -> str:
    """`text` with its time tokens (`%Y-%m-%d`) evaluated at `runtime` (microseconds, UTC).

    Read by the destination tokenizer (`conveyor.domain.destinations`), never
    handed whole to strftime. The run's `runtime` is its logical time, so a
    rerun of a schedule slot writes to the same dated folder. `time_zone` is a
    Files.com or IANA zone name; empty means UTC.
    """
    if "%" not in text:
        return text
    zone = resolve_time_zone(time_zone) if time_zone else UTC
    return render(parse(text), Context(runtime=runtime, zone=zone))
