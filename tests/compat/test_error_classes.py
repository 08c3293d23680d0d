"""Every error type Conveyor can send names a specific class in BOTH official SDKs.

The types are enumerated from the code, not listed here: every ConveyorError
subclass of every module of the `conveyor` package (so a type added anywhere
is checked), and every `error_type = "..."` written in its source. Each must
map to a class other than the generic fallback in the Python SDK (last
segment of `type`, files_sdk.error) and in the JavaScript SDK (whole `type`,
its Errors file), and to the same class in both (the JavaScript name is the
Python one with its family as a prefix: `BadRequest_InvalidCursorError`).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import files_sdk.api_client
import files_sdk.error
from js_sdk import js_error_class_for

import conveyor
from conveyor.domain.errors import ConveyorError

SRC = Path(conveyor.__file__).parent


def conveyor_error_classes() -> list[type[ConveyorError]]:
    for module in pkgutil.walk_packages(conveyor.__path__, "conveyor."):
        if ".migrations." not in module.name:
            importlib.import_module(module.name)
    found: list[type[ConveyorError]] = []
    todo: list[type[ConveyorError]] = [ConveyorError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def error_types() -> dict[str, int]:
    """Each type Conveyor can send, with the HTTP status it is sent with."""
    types = {cls.error_type: cls.http_status for cls in conveyor_error_classes()}
    written = set()
    for path in SRC.rglob("*.py"):
        written |= set(re.findall(r'error_type\s*=\s*"([^"]+)"', path.read_text()))
    assert written <= set(types), written - set(types)
    return types


def test_the_enumeration_finds_the_types_of_every_module() -> None:
    types = error_types()
    assert {
        "not-found",
        "bad-request/invalid-cursor",
        "not-authenticated/authentication-required",
        "processing-failure/automation-cannot-be-run-manually",
        "rate-limited/too-many-requests",
    } <= set(types)
    assert len(types) >= 18


def test_every_error_type_maps_to_one_specific_class_in_both_sdks() -> None:
    types = error_types()
    js = js_error_class_for(sorted(types.items()))
    mismatched = {}
    for error_type in types:
        python_class = files_sdk.api_client._api_error_class(error_type)
        js_class = js[error_type]
        python_name = python_class.__name__
        specific = python_class is not files_sdk.error.APIError and js_class != "FilesApiError"
        if not specific or js_class.split("_")[-1] != python_name:
            mismatched[error_type] = (python_name, js_class)
    assert not mismatched, mismatched
