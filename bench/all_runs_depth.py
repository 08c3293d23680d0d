"""The all-runs view: a page's cost does not depend on its depth (issue 15).

Times a page of 1,000 runs at 90 % depth of `GET /api/conveyor/v1/automation_runs`
(reached with a signed cursor, as a client walking there would hold it) against
the first page, over HTTP from Conveyor's app served by uvicorn in a subprocess,
on SQLite and PostgreSQL, over 2,000,000 runs of 1,000 automations (every
status, five triggers): all runs as an admin, two statuses at once (ten ordered
ranges merged), all runs as a user who owns half of the automations (each run's
automation checked), and as a user who owns ten (1 % of the runs: their ten
automations' ranges merged).

    .venv/bin/python bench/all_runs_depth.py                 # recorded size
    .venv/bin/python bench/all_runs_depth.py --runs 50000 --backend sqlite   # quick
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

from common import (
    DATA_DIR,
    SECRET,
    START_US,
    Seeded,
    ServerProcess,
    interleaved_medians,
    lifecycle_rows,
    load_average,
    print_machine,
)
from conveyor.domain.automations import Trigger
from conveyor.domain.listing import Cursor, CursorCodec, parse_all_runs_query
from conveyor.store import automations, migrate, schema, users
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer

PER_PAGE = 1000
DEPTH = 0.9
GOAL = 1.2
AUTOMATIONS = 1000
TRIGGERS = [t.value for t in Trigger]
COLUMNS = (
    "automation_id, created_at, runtime, completed_at, status, run_stage, "
    "successful_operations, failed_operations, trigger"
)


FEW = 10  # automations of the user who owns few: every 100th, taken from the admin


@dataclass
class Keys:
    admin: str
    owner: str  # owns every other automation
    owner_id: int
    few: str  # owns FEW automations
    few_id: int


def _users(conn: Any) -> Keys:
    """The bench's users and a new API key each; the user who owns few is given
    every 100th automation (the admin's) on every call, so a database seeded
    before they existed has them too."""
    admin = users.ensure_user(conn, "bench-admin", True, START_US)
    owner = users.ensure_user(conn, "bench-owner", False, START_US)
    few = users.ensure_user(conn, "bench-few", False, START_US)
    ids = sorted(conn.execute(sa.select(schema.automations.c.id)).scalars())
    conn.execute(
        sa.update(schema.automations)
        .where(schema.automations.c.id.in_(ids[:: AUTOMATIONS // FEW]))
        .values(user_id=few.id)
    )
    return Keys(
        users.create_api_key(conn, admin.id, START_US),
        users.create_api_key(conn, owner.id, START_US),
        owner.id,
        users.create_api_key(conn, few.id, START_US),
        few.id,
    )


def _prepare(url: str) -> tuple[list[int], Keys]:
    """Migrate; an admin, and an owner of half the automations (the rest are the admin's)."""
    db = Database(url, null_pool=True)
    migrate.upgrade(db)
    with db.write() as conn:
        admin = users.ensure_user(conn, "bench-admin", True, START_US)
        owner = users.ensure_user(conn, "bench-owner", False, START_US)
        ids = [
            automations.create_automation(
                conn, (owner if n % 2 else admin).id, START_US, name=f"bench {n}"
            )
            for n in range(AUTOMATIONS)
        ]
        keys = _users(conn)
    db.dispose()
    return ids, keys


def _keys(url: str) -> Keys:
    db = Database(url, null_pool=True)
    with db.write() as conn:
        keys = _users(conn)
    db.dispose()
    return keys


def rows(total: int, ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """`total` runs made by the domain's lifecycle (common.lifecycle_rows), spread over
    the automations in turn, each with one of the five triggers."""
    for i, row in enumerate(lifecycle_rows(total, ids[0], ids[1:])):
        yield (ids[i % len(ids)], *row[1:], TRIGGERS[i // 7 % len(TRIGGERS)])


def _seed_sqlite(total: int) -> tuple[str, Keys]:
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"all-runs-{total}-rev{migrate.head_revision()}.sqlite"
    url = f"sqlite:///{path}"
    if path.exists():  # built before: new keys for its users
        return url, _keys(url)
    started = time.perf_counter()
    ids, keys = _prepare(url)
    conn = sqlite3.connect(path, isolation_level=None)
    # A bulk load: no journal, a large cache, and the run indexes built once at the end
    # from the rows (sorted) instead of kept up to date row by row.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-500000")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'automation_runs' AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute("BEGIN")
    marks = ", ".join("?" * 9)
    insert = f"INSERT INTO automation_runs ({COLUMNS}) VALUES ({marks})"
    batch: list[tuple[Any, ...]] = []
    for row in rows(total, ids):
        batch.append(row)
        if len(batch) == 50_000:
            conn.executemany(insert, batch)
            batch = []
    conn.executemany(insert, batch)
    conn.execute("COMMIT")
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    print(f"seeded {total:,} runs into SQLite in {time.perf_counter() - started:.0f} s")
    return url, keys


@contextmanager
def seeded(backend: str, total: int) -> Iterator[tuple[Seeded, Keys]]:
    if backend == "sqlite":
        url, keys = _seed_sqlite(total)
        yield Seeded("sqlite", url, 0, total, keys.admin), keys
        return
    started = time.perf_counter()
    with PostgresServer(durable=True) as server:
        url = server.create_database("bench")
        ids, keys = _prepare(url)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            # The run indexes are built once from the loaded rows, not row by row.
            indexes = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'automation_runs' "
                "AND indexname <> 'automation_runs_pkey'"
            ).fetchall()
            for name, _sql in indexes:
                conn.execute(f"DROP INDEX {name}")
            copy_sql = f"COPY automation_runs ({COLUMNS}) FROM STDIN"
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows(total, ids):
                    copy.write_row(row)
            conn.execute("SET maintenance_work_mem = '512MB'")
            for _name, sql in indexes:
                conn.execute(sql)
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) automation_runs")
        print(f"seeded {total:,} runs into PostgreSQL in {time.perf_counter() - started:.0f} s")
        yield Seeded("postgresql", url, 0, total, keys.admin), keys


@dataclass
class Case:
    label: str
    key: str
    params: list[tuple[str, str]]
    where: str  # the same filter in SQL, to find the run at 90 % depth


def measure(db: Seeded, keys: Keys, rounds: int) -> None:
    conn = db.connect()
    mark = "?" if db.backend == "sqlite" else "%s"
    owned = f"automation_id IN (SELECT id FROM automations WHERE user_id = {keys.owner_id})"
    few = f"automation_id IN (SELECT id FROM automations WHERE user_id = {keys.few_id})"
    cases = [
        Case("all runs (admin)", keys.admin, [], "TRUE"),
        Case(
            "filter[status]=failure,partial_failure (admin)",
            keys.admin,
            [("filter[status]", "failure,partial_failure")],
            "status IN ('failure', 'partial_failure')",
        ),
        Case("all runs (owner of half the automations)", keys.owner, [], owned),
        Case(f"all runs (owner of {FEW} automations)", keys.few, [], few),
    ]
    codec = CursorCodec(SECRET.encode())
    with tempfile.TemporaryDirectory() as home, ServerProcess("conveyor", db, Path(home)) as srv:
        client = httpx.Client(base_url=srv.url, timeout=120)
        print(f"{db.backend:<10} {db.runs:,} runs, pages of {PER_PAGE:,}, medians in ms:")
        for case in cases:
            count = conn.execute(f"SELECT count(*) FROM automation_runs WHERE {case.where}")
            total = count.fetchone()[0]
            depth = int(total * DEPTH)
            found = conn.execute(
                f"SELECT created_at, id FROM automation_runs WHERE {case.where} "
                f"ORDER BY created_at DESC, id DESC LIMIT 2 OFFSET {mark}",
                (depth - 1,),
            ).fetchall()
            params = [*case.params, ("per_page", str(PER_PAGE))]
            query = parse_all_runs_query(params, codec, TRIGGERS)
            token = codec.encode(query.scope, query.sort, Cursor("next", *found[0]), 2)
            deep = [*params, ("cursor", token)]
            headers = {"X-FilesAPI-Key": case.key}

            def get(extra: list[tuple[str, str]], headers: dict[str, str] = headers) -> Any:
                response = client.get(
                    "/api/conveyor/v1/automation_runs", params=extra, headers=headers
                )
                assert response.status_code == 200, response.text
                return response

            page = get(deep).json()
            assert len(page) == min(PER_PAGE, total - depth), "the deep page is not full"
            assert page[0]["id"] == found[1][1], "the deep page did not start where expected"
            times = interleaved_medians(
                {"first": lambda p=params: get(p), "deep": lambda d=deep: get(d)}, rounds
            )
            ratio = times["deep"] / times["first"]
            verdict = "met" if ratio <= GOAL else "MISSED"
            print(
                f"{db.backend:<10}   {case.label:<48} {total:>9,} runs  first "
                f"{times['first'] * 1000:7.2f}  at 90 % {times['deep'] * 1000:7.2f}   "
                f"90 %/first {ratio:5.2f}  (goal <= {GOAL}: {verdict})"
            )
        client.close()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=2_000_000, help="runs in all (default 2,000,000)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=30, help="timed calls of each page")
    args = parser.parse_args()
    print_machine()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        with seeded(backend, args.runs) as (db, keys):
            measure(db, keys, args.rounds)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
