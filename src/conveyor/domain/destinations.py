"""Destination templates: Files.com's tokens, parsed once and rendered per file.

A destination (and `destination_replace_to`) may hold these tokens, as in
Files.com's "Customizing Destination Path and Filenames":

| token | value |
|---|---|
| `%tp` | the triggering file's whole path |
| `%tf` | its file name (no folder) |
| `%td` | its folder (the path without the file name) |
| `%tb` | its file name without the extension |
| `%te` | its extension, without the dot (empty when it has none) |
| `%u-NAME` | the webhook parameter (or manual run value) `NAME` (`[A-Za-z0-9_]+`) |
| `%p1`, `%p2`, ... | the right-most, second right-most, ... folder of the source file's path |
| `%Y %y %m %d %e %H %I %M %S %p %j %a %A %b %B %u %w %U %W %z %Z` | `runtime`, in the zone |
| `%%` | a literal `%` |

The template is read by a tokenizer, never handed to `strftime`: only one
known time directive at a time reaches it, so `%t`, `%p1` or `%u-name` can
never be read as `strftime`'s tab, AM/PM or weekday. Any other `%`
sequence is refused when the automation is saved.

Pure functions, no I/O.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qsl

from conveyor.domain import errors

TRIGGER_TOKENS = ("tp", "tf", "td", "tb", "te")
TIME_LETTERS = frozenset("YymdeHIMSpjaAbBuwUWzZ")
# Files.com: webhook parameters are limited to 190 characters each and 550 in total.
MAX_PARAMETER_CHARS = 190
MAX_PARAMETERS_CHARS = 550
_NAME = re.compile(r"[A-Za-z0-9_]+")
_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "time", "trigger", "param", "part"
    arg: str  # the time letter, "tp"..."te", the parameter name, or the part number


Piece = str | Token


class RenderError(Exception):
    """A template cannot be rendered for this file or run; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse(template: str, what: str = "destination") -> tuple[Piece, ...]:
    """The template as literal text and tokens; RequestParamsInvalid for an unknown token."""
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    n = len(template)

    def token(kind: str, arg: str) -> None:
        if literal:
            pieces.append("".join(literal))
            literal.clear()
        pieces.append(Token(kind, arg))

    while i < n:
        char = template[i]
        if char != "%":
            literal.append(char)
            i += 1
            continue
        rest = template[i + 1 : i + 4]
        if rest.startswith("%"):
            literal.append("%")
            i += 2
        elif rest[:2] in TRIGGER_TOKENS:
            token("trigger", rest[:2])
            i += 3
        elif rest.startswith("u-"):
            name = _NAME.match(template, i + 3)
            if name is None:
                raise errors.RequestParamsInvalid(
                    f"{what} {template[:80]!r}: %u- must be followed by a webhook parameter "
                    "name (letters, digits, _), as in %u-username."
                )
            token("param", name.group())
            i = name.end()
        elif rest.startswith("p") and (digits := _DIGITS.match(template, i + 2)):
            number = digits.group()
            if number.startswith("0") or int(number) > 999:
                raise errors.RequestParamsInvalid(
                    f"{what} {template[:80]!r}: %p{number[:5]} names no folder; %p1 is the "
                    "right-most folder of the source path, %p2 the next, up to %p999."
                )
            token("part", number)
            i = digits.end()
        elif rest[:1] and rest[0] in TIME_LETTERS:
            token("time", rest[0])
            i += 2
        else:
            shown = template[i : i + 2]
            raise errors.RequestParamsInvalid(
                f"{what} {template[:80]!r} has the unknown token {shown!r}; supported tokens are "
                "%tp %tf %td %tb %te, %u-NAME, %p1 %p2 ..., the time tokens "
                + " ".join(f"%{c}" for c in sorted(TIME_LETTERS))
                + ", and %% for a literal %."
            )
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def uses(pieces: tuple[Piece, ...], kind: str) -> list[str]:
    """The arguments of the template's tokens of one kind, in order."""
    return [p.arg for p in pieces if isinstance(p, Token) and p.kind == kind]


@dataclass(frozen=True, slots=True)
class Context:
    """What one file's destination is rendered from."""

    runtime: int  # microseconds since the epoch, UTC
    zone: tzinfo = UTC
    trigger_path: str | None = None  # the triggering file (file-action runs)
    params: Mapping[str, str] | None = None  # webhook parameters (webhook runs)
    source_path: str | None = None  # the source file, from the storage root


def split_name(name: str) -> tuple[str, str]:
    """(base, extension without the dot); leading dots do not start an extension."""
    base, extension = posixpath.splitext(name)
    return base, extension[1:]


def _trigger_value(arg: str, path: str) -> str:
    folder, _, name = path.rpartition("/")
    if arg == "tp":
        return path
    if arg == "tf":
        return name
    if arg == "td":
        return folder
    base, extension = split_name(name)
    return base if arg == "tb" else extension


def _time_value(letter: str, moment: datetime) -> str:
    # One whitelisted directive at a time: nothing else of the template reaches strftime.
    return moment.strftime("%" + letter)


def _checked(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise RenderError(f"{what} contains a control character")
    return value


def render(pieces: tuple[Piece, ...], context: Context) -> str:
    """The template's text with every token replaced; RenderError when a value is missing."""
    out: list[str] = []
    moment: datetime | None = None
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        if piece.kind == "time":
            if moment is None:
                moment = datetime.fromtimestamp(context.runtime / 1_000_000, context.zone)
            out.append(_time_value(piece.arg, moment))
        elif piece.kind == "trigger":
            if context.trigger_path is None:
                raise RenderError(
                    f"%{piece.arg} names the triggering file, and this run was not started "
                    "by a file action"
                )
            value = _trigger_value(piece.arg, context.trigger_path)
            out.append(_checked(value, f"%{piece.arg} ({value[:60]!r})"))
        elif piece.kind == "param":
            value = param_value(piece.arg, context.params)
            out.append(value)
        else:
            if context.source_path is None:
                raise RenderError(f"%p{piece.arg} names a folder of the source file's path")
            folders = context.source_path.split("/")[:-1]
            index = int(piece.arg)
            if index > len(folders):
                raise RenderError(
                    f"%p{index} names folder {index} from the right of "
                    f"{context.source_path!r}, which has only {len(folders)}"
                )
            out.append(_checked(folders[-index], f"%p{index}"))
    return "".join(out)


def param_value(name: str, params: Mapping[str, str] | None) -> str:
    """A webhook parameter's value as a destination may use it, or RenderError why not."""
    if params is None:
        raise RenderError(f"%u-{name} names a parameter, and this run was given none")
    if name not in params:
        raise RenderError(
            f"parameter {name!r} (used by %u-{name}) was not sent with the webhook call or "
            "the manual run"
        )
    value = params[name]
    if len(value) > MAX_PARAMETER_CHARS:
        raise RenderError(
            f"parameter {name!r} is {len(value)} characters long; the limit is "
            f"{MAX_PARAMETER_CHARS}"
        )
    if value in ("", ".", "..") or "/" in value or "\\" in value:
        raise RenderError(
            f"parameter {name!r} ({value[:60]!r}) is not usable as a name: it is "
            "empty, '.' or '..', or holds a slash"
        )
    return _checked(value, f"parameter {name!r}")


def check_parameters(params: Mapping[str, str], used: list[str]) -> None:
    """Files.com's total limit on the parameters a run's destinations use."""
    total = sum(len(params[name]) for name in set(used) if name in params)
    if total > MAX_PARAMETERS_CHARS:
        raise RenderError(
            f"the parameters used ({', '.join(sorted(set(used)))}) are {total} "
            f"characters in total; the limit is {MAX_PARAMETERS_CHARS}"
        )


def split_relative(destination: str) -> tuple[int | None, str]:
    """Files.com: a destination starting with `./` or `../` is relative to the source's folder.

    (None, destination) for an absolute one; otherwise (how many folders up,
    the rest): `./out/` is (0, "out/"), `../../x` is (2, "x").
    """
    if not destination.startswith(("./", "../")):
        return None, destination
    ups = 0
    rest = destination
    while True:
        if rest.startswith("./"):
            rest = rest[2:]
        elif rest.startswith("../"):
            ups += 1
            rest = rest[3:]
        else:
            return ups, rest


def climb(folder: str, ups: int, destination: str) -> str:
    """`folder` (from the storage root) `ups` levels up; RenderError above the root."""
    parts = [p for p in folder.split("/") if p]
    if ups > len(parts):
        raise RenderError(
            f"the relative destination {destination[:80]!r} climbs above the storage root "
            f"from {folder or 'the root'!r}"
        )
    return "/".join(parts[: len(parts) - ups])


def manual_values(value: Any) -> dict[str, str]:
    """A manual run's `values` (Conveyor's extension): the parameters `%u-NAME` reads.

    An object of names (`[A-Za-z0-9_]+`) to strings, numbers or booleans,
    within Files.com's limits for webhook parameters (190 characters each,
    550 in all); RequestParamsInvalid otherwise.
    """
    if not isinstance(value, dict):
        raise errors.RequestParamsInvalid('values must be an object such as {"username": "bob"}.')
    found: dict[str, str] = {}
    for name, item in value.items():
        if not _NAME.fullmatch(name):
            raise errors.RequestParamsInvalid(
                f"values: {name[:40]!r} is not a parameter name (letters, digits and _)."
            )
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str | int | float):
            text = str(item)
        else:
            raise errors.RequestParamsInvalid(
                f"values.{name} must be a string, a number or a boolean."
            )
        if len(text) > MAX_PARAMETER_CHARS:
            raise errors.RequestParamsInvalid(
                f"values.{name} is {len(text)} characters long; the limit is {MAX_PARAMETER_CHARS}."
            )
        found[name] = text
    total = sum(len(text) for text in found.values())
    if total > MAX_PARAMETERS_CHARS:
        raise errors.RequestParamsInvalid(
            f"values are {total} characters in total; the limit is {MAX_PARAMETERS_CHARS}."
        )
    return found


def webhook_params(payload: Mapping[str, Any]) -> dict[str, str]:
    """The parameters of a webhook call, as `%u-NAME` reads them: GET and POST parameters.

    From the query string, then the body when it is a form
    (`application/x-www-form-urlencoded`) or a JSON object (its top-level
    strings, numbers and booleans); a body parameter wins over a query
    parameter of the same name, and a later one over an earlier one.
    """
    params: dict[str, str] = {}
    for name, value in payload.get("query") or ():
        params[str(name)] = str(value)
    body = payload.get("body") if payload.get("body_encoding") == "utf-8" else None
    kind = str(payload.get("content_type") or "").split(";")[0].strip().lower()
    if not body:
        return params
    if kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body, keep_blank_values=True))
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(body)
        except ValueError:
            return params
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool):
                    params[name] = "true" if value else "false"
                elif isinstance(value, str | int | float):
                    params[name] = str(value)
    return params
