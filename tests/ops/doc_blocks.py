"""The shell blocks of README.md and docs/*.md, as a reader would copy them.

A shell block is a fenced code block tagged `sh`, `bash`, `shell` or `console`
(indented fences inside list items count too): a script, run as a whole. An
untagged block with lines starting `$ ` is a transcript: each `$ ` line is a
command and the lines after it, up to the next, are what it printed. Other
blocks (`text`, untagged output, `json`, ...) are not run. A block that cannot
run in a test says so, with its reason, in an HTML comment on the line before
its fence (blank lines between are allowed):

    <!-- not run by tests: systemd units need a booted systemd -->
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELL_TAGS = frozenset({"sh", "bash", "shell", "console"})
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
SKIP = re.compile(r"^\s*<!--\s*not run by tests:\s*(?P<reason>.*?)\s*-->\s*$")


TRANSCRIPT = "transcript"


@dataclass(frozen=True, slots=True)
class Step:
    """One command of a transcript and the lines shown as its output."""

    command: str
    shown: list[str]


@dataclass(frozen=True, slots=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    tag: str  # a shell tag, or TRANSCRIPT
    text: str
    skip_reason: str | None

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"

    def steps(self) -> list[Step]:
        """A transcript's commands (a line ending in a backslash goes on), each with
        the output shown after it."""
        steps: list[Step] = []
        lines = self.text.splitlines()
        index = 0
        while index < len(lines):
            if not lines[index].startswith("$ "):
                if steps:
                    steps[-1].shown.append(lines[index])
                index += 1
                continue
            command = [lines[index][2:]]
            while command[-1].endswith("\\") and index + 1 < len(lines):
                index += 1
                command.append(lines[index])
            steps.append(Step("\n".join(command), []))
            index += 1
        return steps


def blocks(path: Path) -> list[Block]:
    """Every shell block in one Markdown file, with the reason it is not run, if marked."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        tag = (opening["info"].strip().split() or [""])[0].lower()
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            end += 1
        body = [_dedent(line, indent) for line in lines[index + 1 : end]]
        if not tag and any(line.startswith("$ ") for line in body):
            tag = TRANSCRIPT
        if tag in SHELL_TAGS or tag == TRANSCRIPT:
            found.append(
                Block(path, index + 1, tag, "\n".join(body) + "\n", _skip_reason(lines, index))
            )
        index = end + 1
    return found


def _dedent(line: str, indent: int) -> str:
    """A block line without the indentation of its fence (a list item's)."""
    cut = len(line) - len(line.lstrip(" \t"))
    return line[min(cut, indent) :]


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before < 0:
        return None
    marked = SKIP.match(lines[before])
    if marked is None:
        return None
    if not marked["reason"]:
        raise ValueError(f"line {before + 1}: a 'not run by tests' mark needs its reason")
    return marked["reason"]


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
