"""Figure 1: a page's cost does not depend on its depth.

Times a page of 1,000 runs at 90 % depth (reached with a signed cursor, as a
client walking there would hold it) against the first page, over HTTP from
Conveyor's app served by uvicorn in a subprocess, on SQLite and PostgreSQL.
For comparison it times the same SQL with LIMIT/OFFSET (what offset-paged
run APIs do) and with the keyset condition, both through the raw driver.

    .venv/bin/python bench/paging_depth.py            # recorded size: 1,000,000 + 1,000,000 runs
    .venv/bin/python bench/paging_depth.py --runs 20000 --backend sqlite   # quick
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from common import (
    ListSql,
    Seeded,
    ServerProcess,
    anchor_at,
    arguments,
    backends,
    interleaved_medians,
    list_sql,
    print_machine,
    seeded,
    signed_cursor,
)

PER_PAGE = 1000
DEPTH = 0.9
GOAL = 1.2


def measure(db: Seeded, rounds: int, offset_rounds: int) -> None:
    depth = int(db.runs * DEPTH)
    conn = db.connect()
    anchor = anchor_at(db, conn, depth)
    assert anchor is not None
    expected_first_id = anchor_at(db, conn, depth + 1)
    cursor = signed_cursor(db, anchor, PER_PAGE)

    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        client = httpx.Client(base_url=srv.url, headers={"X-FilesAPI-Key": db.api_key})
        params = {"automation_id": db.automation_id, "per_page": PER_PAGE}

        def get(extra: dict[str, str]) -> httpx.Response:
            response = client.get("/api/rest/v1/automation_runs", params={**params, **extra})
            assert response.status_code == 200, response.text
            return response

        # Checked once, outside the timing, so that the client's JSON parsing is not timed.
        assert len(get({}).json()) == PER_PAGE
        page = get({"cursor": cursor}).json()
        assert expected_first_id is not None and len(page) == PER_PAGE
        assert page[0]["id"] == expected_first_id[1], "the cursor did not land at the depth"

        http = interleaved_medians(
            {"first": lambda: get({}), "deep": lambda: get({"cursor": cursor})}, rounds
        )
        client.close()

    def query(sql: ListSql, anchor: tuple[int, int] | None, offset: int = 0) -> None:
        values = sql.params(db.automation_id, PER_PAGE, anchor, offset)
        rows = conn.execute(sql.sql, values).fetchall()
        assert len(rows) == PER_PAGE + 1

    first_sql, keyset_sql = list_sql(db.url, keyset=False), list_sql(db.url, keyset=True)
    offset_sql = first_sql.with_offset()
    raw = interleaved_medians(
        {
            "keyset first": lambda: query(first_sql, None),
            "keyset deep": lambda: query(keyset_sql, anchor),
        },
        rounds,
    )
    offset = interleaved_medians(
        {
            "offset first": lambda: query(offset_sql, None, 0),
            "offset deep": lambda: query(offset_sql, None, depth),
        },
        offset_rounds,
    )
    conn.close()

    name = f"{db.backend:<10}"
    print(f"{name} depth {depth:,} of {db.runs:,} runs, pages of {PER_PAGE:,}, medians:")
    lines = [
        ("HTTP, keyset cursor (Conveyor)", http["first"], http["deep"], f"goal <= {GOAL}"),
        ("raw driver, keyset SQL", raw["keyset first"], raw["keyset deep"], ""),
        ("raw driver, LIMIT/OFFSET SQL", offset["offset first"], offset["offset deep"], ""),
    ]
    for label, at_first, at_depth, goal in lines:
        ratio = at_depth / at_first
        verdict = ""
        if goal:
            verdict = f"  ({goal}: {'met' if ratio <= GOAL else 'MISSED'})"
        print(
            f"{name}   {label:<31} first {at_first * 1000:8.2f} ms   at 90 % "
            f"{at_depth * 1000:8.2f} ms   ratio {ratio:6.2f}{verdict}"
        )


def main() -> None:
    args = arguments(
        __doc__.splitlines()[0],
        rounds={"type": int, "default": 30, "help": "timed calls of each keyset case"},
        offset_rounds={"type": int, "default": 7, "help": "timed calls of each OFFSET case"},
    )
    print_machine()
    for backend in backends(args):
        with seeded(backend, args.runs) as db:
            measure(db, args.rounds, args.offset_rounds)


if __name__ == "__main__":
    main()
