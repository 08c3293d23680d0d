"""List-query parsing (every parameter form of SPEC 2.1) and the signed cursor codec."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain import errors
from conveyor.domain.listing import (
    MAX_INT64,
    MAX_PARAM_LENGTH,
    Cursor,
    CursorCodec,
    RunListQuery,
    Sort,
    collect,
    parse_run_list_query,
    query_pairs,
)
from conveyor.domain.runs import RunStatus

CODEC = CursorCodec(b"server secret")
NEWEST_FIRST = Sort("created_at", descending=True)


def parse(*pairs: tuple[str, str], default_per_page: int = 1000) -> RunListQuery:
    return parse_run_list_query(list(pairs), CODEC, default_per_page)


AID = ("automation_id", "7")


# ---------------------------------------------------------------- raw query


def test_query_pairs_decodes_percent_escapes_and_keeps_blanks() -> None:
    assert query_pairs(b"automation_id=1&sort_by%5Bstatus%5D=asc&cursor=&x=%C3%A9") == [
        ("automation_id", "1"),
        ("sort_by[status]", "asc"),
        ("cursor", ""),
        ("x", "é"),
    ]


@pytest.mark.parametrize("raw", [b"automation_id=%ff", b"a\xff=1", b"x=%C3"])
def test_query_pairs_refuses_bad_utf8(raw: bytes) -> None:
    with pytest.raises(errors.RequestParamsInvalid):
        query_pairs(raw)


def test_collect_splits_groups_and_keeps_the_last_of_a_repeated_key() -> None:
    plain, groups = collect(
        [
            ("per_page", "5"),
            ("sort_by[status]", "asc"),
            ("per_page", "9"),
            ("filter[status]", "success"),
            ("filter[status]", "failure"),
            ("[odd]", "x"),
        ]
    )
    assert plain == {"per_page": "9", "[odd]": "x"}
    assert groups == {"sort_by": {"status": "asc"}, "filter": {"status": "failure"}}


def test_collect_refuses_overlong_values_and_keys() -> None:
    collect([("cursor", "x" * MAX_PARAM_LENGTH)])
    with pytest.raises(errors.RequestParamsInvalid):
        collect([("cursor", "x" * (MAX_PARAM_LENGTH + 1))])
    with pytest.raises(errors.RequestParamsInvalid):
        collect([("k" * (MAX_PARAM_LENGTH + 1), "1")])


# ------------------------------------------------------------ automation_id


def test_defaults() -> None:
    assert parse(AID) == RunListQuery(7, 1000, NEWEST_FIRST, None, None)
    assert parse(AID, default_per_page=25).per_page == 25


@pytest.mark.parametrize("pairs", [[], [("automation_id", "")], [("per_page", "5")]])
def test_automation_id_is_required(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(errors.RequestParamsRequired):
        parse(*pairs)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", 1), (" 42 ", 42), ("007", 7), (str(MAX_INT64), MAX_INT64)]
)
def test_automation_id_accepts_positive_int64(raw: str, value: int) -> None:
    assert parse(("automation_id", raw)).automation_id == value


@pytest.mark.parametrize(
    "raw", ["0", "-1", "abc", "1.5", "+3", "1e3", "٣", str(MAX_INT64 + 1), "1 2", "0x10"]
)
def test_automation_id_refuses_other_forms(raw: str) -> None:
    with pytest.raises(errors.RequestParamsInvalid):
        parse(("automation_id", raw))


def test_repeated_automation_id_counts_with_its_last_value() -> None:
    assert parse(("automation_id", "abc"), ("automation_id", "3")).automation_id == 3


# ------------------------------------------------------------------ per_page


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("10000", 10000), ("250", 250), ("", 1000)])
def test_per_page_range(raw: str, value: int) -> None:
    assert parse(AID, ("per_page", raw)).per_page == value


@pytest.mark.parametrize("raw", ["0", "10001", "-5", "ten", "1.0", str(2**64)])
def test_per_page_out_of_range_or_not_an_integer(raw: str) -> None:
    with pytest.raises(errors.RequestParamsInvalid):
        parse(AID, ("per_page", raw))


# -------------------------------------------------------------------- sort_by


@pytest.mark.parametrize(
    ("field", "direction", "expected"),
    [
        ("created_at", "asc", Sort("created_at", False)),
        ("created_at", "desc", Sort("created_at", True)),
        ("status", "asc", Sort("status", False)),
        ("status", "desc", Sort("status", True)),
        # One automation per list: its runs in automation_id order are in id order.
        ("automation_id", "asc", Sort(None, False)),
        ("automation_id", "desc", Sort(None, True)),
        ("status", " DESC ", Sort("status", True)),
        ("created_at", "Asc", Sort("created_at", False)),
    ],
)
def test_sort_forms(field: str, direction: str, expected: Sort) -> None:
    assert parse(AID, (f"sort_by[{field}]", direction)).sort == expected


def test_more_than_one_sort_field() -> None:
    with pytest.raises(errors.MultipleSortParamsNotAllowed):
        parse(AID, ("sort_by[status]", "asc"), ("sort_by[created_at]", "desc"))


def test_a_repeated_sort_field_is_one_field_with_its_last_direction() -> None:
    query = parse(AID, ("sort_by[status]", "asc"), ("sort_by[status]", "desc"))
    assert query.sort == Sort("status", True)


# --------------------------------------------------------------------- filter


@pytest.mark.parametrize("status", list(RunStatus))
def test_status_filter(status: RunStatus) -> None:
    assert parse(AID, ("filter[status]", status.value)).status is status


@pytest.mark.parametrize("value", ["nope", "", "SUCCESS", "finished", " success"])
def test_status_filter_value_not_allowed(value: str) -> None:
    with pytest.raises(errors.InvalidFilterParamValue):
        parse(AID, ("filter[status]", value))


def test_automation_id_filter_equal_to_automation_id() -> None:
    query = parse(AID, ("filter[automation_id]", "7"), ("filter[status]", "failure"))
    assert (query.automation_id, query.status) == (7, RunStatus.FAILURE)
    assert parse(AID, ("filter[automation_id]", " 7 ")).automation_id == 7


@pytest.mark.parametrize("value", ["8", "", "seven", "-7", "7.0"])
def test_automation_id_filter_that_differs(value: str) -> None:
    with pytest.raises(errors.InvalidFilterParamValue):
        parse(AID, ("filter[automation_id]", value))


@pytest.mark.parametrize(
    ("pair", "error"),
    [
        (("sort_by[id]", "asc"), errors.InvalidSortField),
        (("sort_by[runtime]", "desc"), errors.InvalidSortField),
        (("sort_by[]", "asc"), errors.InvalidSortField),
        (("sort_by[status]", "up"), errors.InvalidSortField),
        (("sort_by[status]", ""), errors.InvalidSortField),
        (("sort_by", "created_at"), errors.InvalidSortField),
        (("filter[run_stage]", "finished"), errors.InvalidFilterField),
        (("filter[id]", "1"), errors.InvalidFilterField),
        (("filter", "status"), errors.InvalidFilterField),
        (("filter_gt[created_at]", "1"), errors.InvalidFilterField),
        (("filter_lteq[created_at]", "1"), errors.InvalidFilterField),
        (("filter_prefix[status]", "suc"), errors.InvalidFilterField),
        (("filter_gteq", "1"), errors.InvalidFilterField),
    ],
)
def test_invalid_sort_or_filter_field(pair: tuple[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(AID, pair)


def test_unknown_parameters_are_refused_by_name() -> None:
    with pytest.raises(errors.RequestParamsInvalid, match=r"^Unknown parameter: action\. "):
        parse(AID, ("action", "x"))
    with pytest.raises(
        errors.RequestParamsInvalid, match=r"^Unknown parameter: search\[\.\.\.\]\. "
    ):
        parse(AID, ("search[name]", "x"))


def test_page_must_be_the_page_the_cursor_leads_to() -> None:
    """The JavaScript SDK sends page=N with the cursor of page N; page 1 has none."""
    assert parse(AID, ("page", "1")) == parse(AID)
    for wrong in ("2", "0", "x"):
        with pytest.raises(errors.RequestParamsInvalid, match="page"):
            parse(AID, ("page", wrong))
    first = parse(AID)
    token = CODEC.encode(first.scope, first.sort, Cursor("next", 5, 1), page=3)
    with_cursor = parse(AID, ("cursor", token), ("page", "3"))
    assert with_cursor.cursor == Cursor("next", 5, 1, 3)
    assert with_cursor == parse(AID, ("cursor", token))
    with pytest.raises(errors.RequestParamsInvalid, match="must be 3 with this cursor"):
        parse(AID, ("cursor", token), ("page", "2"))


# -------------------------------------------------------------------- cursors


def scope(automation_id: int = 7, status: RunStatus | None = None) -> list[object]:
    return ["automation_runs", automation_id, status]


KEY_TYPES: dict[str | None, type | None] = {None: None, "created_at": int, "status": str}


# No deadline: a timing assertion fails on a loaded machine, not on a wrong cursor.
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    st.sampled_from(
        [
            (Sort(None, False), st.none()),
            (Sort(None, True), st.none()),
            (Sort("created_at", False), st.integers(0, 2**62)),
            (Sort("created_at", True), st.integers(0, 2**62)),
            (Sort("status", False), st.sampled_from([s.value for s in RunStatus])),
            (Sort("status", True), st.sampled_from([s.value for s in RunStatus])),
        ]
    ).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1])),
    st.sampled_from(["next", "prev"]),
    st.integers(1, MAX_INT64),
    st.integers(1, MAX_INT64),
    st.sampled_from([None, *RunStatus]),
    st.integers(1, MAX_INT64),
)
def test_cursor_round_trip(
    sort_and_key: tuple[Sort, object],
    direction: str,
    run_id: int,
    automation_id: int,
    status: RunStatus | None,
    page: int,
) -> None:
    sort, key = sort_and_key
    cursor = Cursor(direction, key, run_id, page)
    token = CODEC.encode(scope(automation_id, status), sort, cursor, page)
    assert set(token) <= set(string.ascii_letters + string.digits + "-_.")
    assert CODEC.decode(token, scope(automation_id, status), sort, KEY_TYPES[sort.field]) == cursor


def test_cursor_decodes_through_the_query_parser() -> None:
    sort = Sort("status", False)
    cursor = Cursor("prev", "running", 12)
    token = CODEC.encode(scope(7, RunStatus.RUNNING), sort, cursor)
    query = parse(AID, ("sort_by[status]", "asc"), ("filter[status]", "running"), ("cursor", token))
    assert query == RunListQuery(7, 1000, sort, RunStatus.RUNNING, cursor)


def test_an_empty_cursor_is_no_cursor() -> None:
    assert parse(AID, ("cursor", "")).cursor is None


TOKEN = CODEC.encode(scope(), NEWEST_FIRST, Cursor("next", 1_700_000_000_000_000, 41))
TOKEN_CHARS = string.ascii_letters + string.digits + "-_.=+/!~% "


def test_tampering_with_any_character_fails() -> None:
    """Every one-character change, insertion or deletion anywhere in a token."""
    variants = set()
    for i in range(len(TOKEN) + 1):
        variants.add(TOKEN[:i] + TOKEN[i + 1 :])
        for char in TOKEN_CHARS:
            variants.add(TOKEN[:i] + char + TOKEN[i + 1 :])
            variants.add(TOKEN[:i] + char + TOKEN[i:])
    variants.discard(TOKEN)
    assert len(variants) > 10_000
    for variant in variants:
        with pytest.raises(errors.InvalidCursor):
            CODEC.decode(variant, scope(), NEWEST_FIRST, int)
    assert CODEC.decode(TOKEN, scope(), NEWEST_FIRST, int) == Cursor(
        "next", 1_700_000_000_000_000, 41
    )


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "a.b.c", "!!!.???", TOKEN + "." + TOKEN, "x" * 1000 + "." + "y" * 30],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(errors.InvalidCursor):
        CODEC.decode(token, scope(), NEWEST_FIRST, int)


def test_another_servers_secret_fails() -> None:
    other = CursorCodec(b"another secret")
    with pytest.raises(errors.InvalidCursor):
        other.decode(TOKEN, scope(), NEWEST_FIRST, int)
    with pytest.raises(errors.InvalidCursor):
        parse(AID, ("cursor", other.encode(scope(), NEWEST_FIRST, Cursor("next", 5, 1))))


@pytest.mark.parametrize(
    "pairs",
    [
        [("automation_id", "8")],
        [AID, ("filter[status]", "running")],
        [("automation_id", "8"), ("filter[status]", "running")],
    ],
)
def test_cursor_for_another_list_is_invalid(pairs: list[tuple[str, str]]) -> None:
    """Bound to the automation and the status filter it was made for."""
    with pytest.raises(errors.InvalidCursor) as caught:
        parse(*pairs, ("cursor", TOKEN))
    assert type(caught.value) is errors.InvalidCursor


@pytest.mark.parametrize(
    "sort_pair",
    [
        ("sort_by[created_at]", "asc"),
        ("sort_by[status]", "desc"),
        ("sort_by[automation_id]", "desc"),
    ],
)
def test_cursor_used_with_another_sort(sort_pair: tuple[str, str]) -> None:
    with pytest.raises(errors.InvalidCursorTypeForSort):
        parse(AID, sort_pair, ("cursor", TOKEN))


def test_cursor_with_the_same_sort_spelled_explicitly_is_accepted() -> None:
    query = parse(AID, ("sort_by[created_at]", "desc"), ("cursor", TOKEN))
    assert query.cursor == Cursor("next", 1_700_000_000_000_000, 41)


@pytest.mark.parametrize(
    ("sort", "key", "key_type"),
    [
        (Sort("created_at", True), "1700", int),  # a string where a time belongs
        (Sort("created_at", True), True, int),  # JSON true is not a time
        (Sort("created_at", True), None, int),
        (Sort("status", False), 3, str),
        (Sort(None, False), 5, None),  # id order carries no key
    ],
)
def test_signed_cursor_with_a_key_of_the_wrong_type(
    sort: Sort, key: object, key_type: type
) -> None:
    token = CODEC.encode(scope(), sort, Cursor("next", key, 1))
    with pytest.raises(errors.InvalidCursor):
        CODEC.decode(token, scope(), sort, key_type)


@pytest.mark.parametrize("run_id", [True, "5", 1.5, None])
def test_signed_cursor_with_an_id_that_is_not_an_integer(run_id: object) -> None:
    token = CODEC.encode(scope(), NEWEST_FIRST, Cursor("next", 5, run_id))  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidCursor):
        CODEC.decode(token, scope(), NEWEST_FIRST, int)


def test_signed_cursor_of_another_format_version() -> None:
    class NextVersion(CursorCodec):
        VERSION = 3

    token = NextVersion(b"server secret").encode(scope(), NEWEST_FIRST, Cursor("next", 5, 1))
    with pytest.raises(errors.InvalidCursor):
        CODEC.decode(token, scope(), NEWEST_FIRST, int)


def test_signed_cursor_with_an_unknown_direction() -> None:
    token = CODEC.encode(scope(), NEWEST_FIRST, Cursor("sideways", 5, 1))
    with pytest.raises(errors.InvalidCursor):
        CODEC.decode(token, scope(), NEWEST_FIRST, int)
