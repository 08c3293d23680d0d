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
    interleaved_medians,
    list_sql,
    run_on_seeded,
    signed_cursor,
)

PER_PAGE = 1000
DEPTH = 0.9
GOAL = 1.2


def measure(db: Seeded, rounds: int, offset_rounds: int) -> None:
    depth = int(db.runs * DEPTH)
    conn = db.connect()
    # Where each timed page starts: the first page, the second (the cost of any
    # cursor page, whatever its depth) and the page at 90 % depth.
    starts = {"first": 0, "second": PER_PAGE, "deep": depth}
    anchors = {name: anchor_at(db, conn, at) for name, at in starts.items()}
    first_ids = {name: anchor_at(db, conn, at + 1) for name, at in starts.items()}
    cursors = {
        name: {"cursor": signed_cursor(db, anchor, PER_PAGE)} if anchor else {}
        for name, anchor in anchors.items()
    }

    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        client = httpx.Client(base_url=srv.url, headers={"X-FilesAPI-Key": db.api_key})
        params = {"automation_id": db.automation_id, "per_page": PER_PAGE}

        def get(extra: dict[str, str]) -> httpx.Response:
            response = client.get("/api/rest/v1/automation_runs", params={**params, **extra})
            assert response.status_code == 200, response.text
            return response

        # Checked once, outside the timing, so that the client's JSON parsing is not timed.
        for name, extra in cursors.items():
            page = get(extra).json()
            first_id = first_ids[name]
            assert len(page) == PER_PAGE and first_id is not None
            assert page[0]["id"] == first_id[1], f"the {name} page did not start where expected"

        http = interleaved_medians(
            {name: lambda extra=extra: get(extra) for name, extra in cursors.items()}, rounds
        )
        client.close()

    def query(sql: ListSql, anchor: tuple[int, int] | None, offset: int = 0) -> None:
        values = sql.params(db.automation_id, PER_PAGE, anchor, offset)
        rows = conn.execute(sql.sql, values).fetchall()
        # The page and the row saying whether there is more; after a cursor also the
        # anchor's own row (docs/indexes.md).
        assert len(rows) == PER_PAGE + (2 if anchor else 1)

    first_sql, keyset_sql = list_sql(db.url, keyset=False), list_sql(db.url, keyset=True)
    offset_sql = first_sql.with_offset()
    raw = interleaved_medians(
        {
            name: lambda anchor=anchor: query(keyset_sql if anchor else first_sql, anchor)
            for name, anchor in anchors.items()
        },
        rounds,
    )
    offset = interleaved_medians(
        {name: lambda at=at: query(offset_sql, None, at) for name, at in starts.items()},
        offset_rounds,
    )
    conn.close()

    name = f"{db.backend:<10}"
    print(f"{name} depth {depth:,} of {db.runs:,} runs, pages of {PER_PAGE:,}, medians in ms:")
    lines = [
        ("HTTP, keyset cursor (Conveyor)", http, True),
        ("raw driver, keyset SQL", raw, False),
        ("raw driver, LIMIT/OFFSET SQL", offset, False),
    ]
    for label, times, is_goal in lines:
        ratio = times["deep"] / times["first"]
        verdict = ""
        if is_goal:
            verdict = f"  (goal <= {GOAL}: {'met' if ratio <= GOAL else 'MISSED'})"
        print(
            f"{name}   {label:<31} first {times['first'] * 1000:7.2f}  second "
            f"{times['second'] * 1000:7.2f}  at 90 % {times['deep'] * 1000:7.2f}   "
            f"90 %/first {ratio:6.2f}  90 %/second {times['deep'] / times['second']:6.2f}"
            f"{verdict}"
        )


def main() -> None:
    run_on_seeded(
        __doc__.splitlines()[0],
        measure,
        rounds={"type": int, "default": 50, "help": "timed calls of each keyset case"},
        offset_rounds={"type": int, "default": 7, "help": "timed calls of each OFFSET case"},
    )


if __name__ == "__main__":
    main()
