"""Authentication comes before validation on every route of the API.

Every operation with an API key, enumerated from the app's own routes (so a
route added later is checked too), is sent with no key and with a wrong key,
each time with bad path ids, bad parameters and a body that is not JSON: the
answer is always the 401 of the missing or wrong key, never a 400 or 404.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from conveyor.api.openapi_errors import NO_API_KEY

BAD_QUERY = (
    "automation_id=abc&per_page=0&cursor=garbage&page=7&count=-1&sort_by[nope]=up"
    "&filter[nope]=1&filter_gt[last_modified_at]=yesterday&user_id=x"
)
BAD_BODIES: list[tuple[dict[str, str], bytes]] = [
    ({"Content-Type": "application/json"}, b"{not json"),
    ({}, b""),
]


def keyed_operations(client: httpx.Client) -> list[tuple[str, str]]:
    """(method, path template) of every API operation of the served OpenAPI document,
    less those reached without a key (their URL carries the credential)."""
    document = client.get("/api/rest/v1/openapi.json").json()
    found = []
    for path, item in document["paths"].items():
        if path.startswith("/api/") and not path.startswith(NO_API_KEY):
            found += [(method.upper(), path) for method in item if method != "parameters"]
    return found


def test_every_route_with_a_key_answers_401_first(server: Any) -> None:
    with httpx.Client(base_url=server.url) as client:
        operations = keyed_operations(client)
        assert ("POST", "/api/rest/v1/automations") in operations
        assert ("GET", "/api/rest/v1/automation_runs") in operations
        assert len(operations) >= 11
        for method, template in operations:
            for path_id in ("abc", "99999999"):
                path = re.sub(r"\{[^}]+\}", path_id, template)
                for headers, body in BAD_BODIES:
                    for key, expected in (
                        (None, "not-authenticated/authentication-required"),
                        ("wrong-key", "not-authenticated/invalid-credentials"),
                    ):
                        sent = dict(headers)
                        if key:
                            sent["X-FilesAPI-Key"] = key
                        reply = client.request(
                            method, f"{path}?{BAD_QUERY}", headers=sent, content=body
                        )
                        assert (reply.status_code, reply.json()["type"]) == (401, expected), (
                            method,
                            path,
                            body,
                            reply.text,
                        )
