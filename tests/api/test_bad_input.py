"""Input beyond SPEC 2.3's table, sent raw: repeated keys, unknown keys, huge values, bad bytes.

Every answer is a 2xx or a clear 4xx in Files.com's shape, never a 500 and
never a stack trace, and no request changes the database.
"""

from __future__ import annotations

import pytest
from api_http import API, Reply, assert_error, fetch, fetch_raw, snapshot
from api_world import World

PARAMS_INVALID = "bad-request/request-params-invalid"


def listing(world: World, query: str, key: str | None = None) -> Reply:
    return fetch(world.url, f"{API}/automation_runs?{query}", key or world.alice.key)


def ids(reply: Reply) -> list[int]:
    assert reply.status == 200, reply.body[:300]
    return [record["id"] for record in reply.json()]


@pytest.fixture
def unchanged(world: World):  # type: ignore[no-untyped-def]
    """The database is the same after the test as before it."""
    before = snapshot(world.db)
    yield world
    assert snapshot(world.db) == before


# ------------------------------------------------------------- repeated keys


def test_repeated_key_counts_with_its_last_value(unchanged: World) -> None:
    w = unchanged
    plain = listing(w, f"automation_id={w.a}")
    assert listing(w, f"automation_id=abc&automation_id={w.a}").body == plain.body
    assert_error(listing(w, f"automation_id={w.a}&automation_id=abc"), 400, PARAMS_INVALID)
    assert len(ids(listing(w, f"automation_id={w.a}&per_page=1&per_page=3"))) == 3
    ascending = listing(w, f"automation_id={w.a}&sort_by[created_at]=asc")
    repeated = listing(w, f"automation_id={w.a}&sort_by[created_at]=desc&sort_by[created_at]=asc")
    assert repeated.body == ascending.body
    assert ids(ascending) != ids(plain)
    successes = listing(w, f"automation_id={w.a}&filter[status]=nope&filter[status]=success")
    assert {r["status"] for r in successes.json()} == {"success"}


def test_repeated_sort_by_with_two_fields_is_multiple_sort_params(unchanged: World) -> None:
    reply = listing(
        unchanged, f"automation_id={unchanged.a}&sort_by[status]=asc&sort_by[created_at]=asc"
    )
    assert_error(reply, 400, "bad-request/multiple-sort-params-not-allowed")


def test_unknown_parameters_are_refused_by_name(unchanged: World) -> None:
    """Accept or refuse, never ignore: every parameter the list does not read is named."""
    w = unchanged
    noisy = listing(
        w, f"foo=bar&automation_id={w.a}&page=1&sort=status&filter_by=x&action=delete&a=%&b"
    )
    assert_error(noisy, 400, "bad-request/request-params-invalid")
    assert noisy.json()["error"].startswith(
        "Unknown parameter: a, action, b, filter_by, foo, sort. This list takes "
    )


# -------------------------------------------------------------- long values


def test_a_100_kb_value_is_a_files_com_400(unchanged: World) -> None:
    """Beyond 64 KiB the URL cannot be parsed; the answer is still Files.com JSON."""
    w = unchanged
    huge = "a" * 100_000
    for target in (
        f"{API}/automation_runs?automation_id={w.a}&x={huge}",
        f"{API}/automation_runs?automation_id={huge}",
        f"{API}/automation_runs/{'9' * 100_000}",
    ):
        body = assert_error(fetch(w.url, target, w.alice.key), 400, PARAMS_INVALID)
        assert "65535" in body["error"]


def test_values_over_4096_characters_are_refused(unchanged: World) -> None:
    w = unchanged
    for query in (
        f"automation_id={w.a}&cursor={'a' * 10_000}",
        f"automation_id={w.a}&x={'a' * 5000}",
    ):
        body = assert_error(listing(w, query), 400, PARAMS_INVALID)
        assert "longer than 4096 characters" in body["error"]


def test_a_long_cursor_under_the_parameter_limit_is_an_invalid_cursor(unchanged: World) -> None:
    reply = listing(unchanged, f"automation_id={unchanged.a}&cursor={'a' * 2000}.{'b' * 22}")
    assert_error(reply, 400, "bad-request/invalid-cursor")


def test_a_100_kb_api_key_is_invalid_credentials(unchanged: World) -> None:
    reply = listing(unchanged, f"automation_id={unchanged.a}", key="k" * 100_000)
    assert_error(reply, 401, "not-authenticated/invalid-credentials")


def test_per_page_out_of_range_names_its_range(unchanged: World) -> None:
    w = unchanged
    for value in (0, 10_001):
        body = assert_error(
            listing(w, f"automation_id={w.a}&per_page={value}"), 400, PARAMS_INVALID
        )
        assert body["error"] == f"Parameter per_page must be between 1 and 10000, got {value}."


def test_integers_beyond_int64_are_out_of_range(unchanged: World) -> None:
    w = unchanged
    assert_error(listing(w, "automation_id=9223372036854775808"), 400, PARAMS_INVALID)
    assert_error(listing(w, f"automation_id={w.a}&per_page={'9' * 40}"), 400, PARAMS_INVALID)
    find = fetch(w.url, f"{API}/automation_runs/{'9' * 40}", w.alice.key)
    assert_error(find, 400, PARAMS_INVALID)


# ---------------------------------------------------------------- bad bytes


@pytest.mark.parametrize(
    "query",
    [
        "automation_id={a}&per_page=%ff%fe",
        "automation_id={a}&%ff%fe=1",
        "automation_id={a}&cursor=%ff",
        "automation_id={a}&filter[status]=%ed%a0%80",  # an encoded UTF-16 surrogate
        "automation_id=%c0%b1",  # an overlong encoding of "1"
    ],
)
def test_percent_encoded_invalid_utf8_is_params_invalid(unchanged: World, query: str) -> None:
    body = assert_error(listing(unchanged, query.format(a=unchanged.a)), 400, PARAMS_INVALID)
    assert body["error"] == "The query string is not valid UTF-8 after percent-decoding."


@pytest.mark.parametrize("run_id", ["%ff%fe", "--5", "%2B1", "1.0", "0x10"])
def test_malformed_run_ids_are_params_invalid(unchanged: World, run_id: str) -> None:
    reply = fetch(unchanged.url, f"{API}/automation_runs/{run_id}", unchanged.alice.key)
    assert_error(reply, 400, PARAMS_INVALID)


def test_raw_non_ascii_bytes_in_the_url_get_a_files_com_400(unchanged: World) -> None:
    w = unchanged
    request = (
        f"GET {API}/automation_runs?automation_id={w.a}&per_page=\xff\xfe HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nX-FilesAPI-Key: {w.alice.key}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    body = assert_error(fetch_raw(w.url, request), 400, "bad-request")
    assert "must be percent-encoded" in body["error"]


def test_non_utf8_bytes_in_the_api_key_are_invalid_credentials(unchanged: World) -> None:
    w = unchanged
    request = (
        f"GET {API}/automation_runs?automation_id={w.a} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nX-FilesAPI-Key: \xff\xfe\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    assert_error(fetch_raw(w.url, request), 401, "not-authenticated/invalid-credentials")


def test_bytes_that_are_not_http_get_a_files_com_400(unchanged: World) -> None:
    reply = fetch_raw(unchanged.url, b"\x16\x03\x01\x00\xa5 not http at all\r\n\r\n")
    assert_error(reply, 400, "bad-request")


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("automation_id=%00", PARAMS_INVALID),
        ("automation_id=--5", PARAMS_INVALID),
        ("automation_id={a}&per_page=--1", PARAMS_INVALID),
        ("automation_id=%EF%BC%91", PARAMS_INVALID),  # a fullwidth digit one
        ("automation_id=%4", PARAMS_INVALID),
        ("automation_id={a}&per_page=%2B5", PARAMS_INVALID),
        ("automation_id={a}&per_page=1.5", PARAMS_INVALID),
        ("automation_id={a}&per_page=%D9%A3", PARAMS_INVALID),  # an Arabic-Indic digit three
        ("automation_id={a}&filter[status]=%00", "bad-request/invalid-filter-param-value"),
        ("automation_id={a}&filter[status]=SUCCESS", "bad-request/invalid-filter-param-value"),
    ],
)
def test_odd_values_are_refused_not_coerced(unchanged: World, query: str, kind: str) -> None:
    assert_error(listing(unchanged, query.format(a=unchanged.a)), 400, kind)


# ------------------------------------------------------ shapes of sort/filter


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("sort_by=created_at", "bad-request/invalid-sort-field"),
        ("sort_by[]=asc", "bad-request/invalid-sort-field"),
        ("sort_by[created_at]=", "bad-request/invalid-sort-field"),
        ("filter=success", "bad-request/invalid-filter-field"),
        ("filter[status][x]=success", "bad-request/invalid-filter-field"),
        ("filter_gt[created_at]=2000-01-01T00:00:00Z", "bad-request/invalid-filter-field"),
        ("filter_gteq[created_at]=2000-01-01T00:00:00Z", "bad-request/invalid-filter-field"),
        ("filter_lt[created_at]=2000-01-01T00:00:00Z", "bad-request/invalid-filter-field"),
        ("filter_lteq[created_at]=2000-01-01T00:00:00Z", "bad-request/invalid-filter-field"),
        ("filter_prefix[status]=succ", "bad-request/invalid-filter-field"),
    ],
)
def test_sort_and_filter_shapes_files_com_does_not_take(
    unchanged: World, query: str, kind: str
) -> None:
    assert_error(listing(unchanged, f"automation_id={unchanged.a}&{query}"), 400, kind)


# --------------------------------------------------- other paths and methods


def test_unknown_path_and_wrong_method_are_files_com_errors(unchanged: World) -> None:
    w = unchanged
    assert_error(fetch(w.url, f"{API}/nope", w.alice.key), 404, "not-found")
    post = fetch(w.url, f"{API}/automation_runs?automation_id={w.a}", w.alice.key, method="POST")
    assert_error(post, 405, "bad-request/method-not-allowed")


def test_authentication_comes_before_parameters_but_after_the_encoding(unchanged: World) -> None:
    w = unchanged
    keyless = fetch(w.url, f"{API}/automation_runs?automation_id=abc&sort_by[x]=y")
    assert_error(keyless, 401, "not-authenticated/authentication-required")
    not_utf8 = fetch(w.url, f"{API}/automation_runs?automation_id={w.a}&per_page=%ff")
    assert_error(not_utf8, 400, PARAMS_INVALID)
