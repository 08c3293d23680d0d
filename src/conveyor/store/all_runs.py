"""The operator's view of runs across automations, and what bulk actions match.

A page is read by `store.keyset` in `created_at, id` order from one index
(docs/indexes.md): several statuses (or triggers) are one ordered range each,
merged under the page's LIMIT, so a page costs the same at any depth:

| filter | index | ranges merged |
|---|---|---|
| automation and statuses | `ix_runs_automation_status_created` | one per status |
| automation | `ix_runs_automation_created` | one |
| triggers or statuses | `ix_runs_trigger_status_created` | one per (trigger, status) |
| none | `ix_runs_created` | one |
| a non-admin's few automations | `ix_runs_automation_created` | one per automation |
| ... and statuses | `ix_runs_automation_status_created` | one per (automation, status) |

A status-only filter reads one range per (trigger, status) rather than an index
starting with `status`: such an index would tempt PostgreSQL's planner away
from `ix_runs_automation_status_created` for one automation's list.

With an automation, a trigger filter is checked on each run of its ranges. A
user who is not an admin sees the runs of the automations they own: when those
make at most MERGED_RANGES ranges, the page merges those automations' own ranges
(last row above); otherwise it reads the filter's ranges, each run's automation
checked against theirs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Dialect

from conveyor.domain.automations import Trigger
from conveyor.domain.listing import AllRunsQuery
from conveyor.domain.runs import RunStatus
from conveyor.store.keyset import KeysetPage, keyset_steps
from conveyor.store.prepared import Prepared, Statement, Steps
from conveyor.store.runs import RUN_COLUMNS, as_run_row
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations
from conveyor.store.users import User

RUN_TRIGGERS = tuple(t.value for t in Trigger)  # what a run's `trigger` holds
_KEY_INDEX = [column.name for column in RUN_COLUMNS].index("created_at")
_RANGE_OPS = {"gt": "__gt__", "gteq": "__ge__", "lt": "__lt__", "lteq": "__le__"}


def _bound(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


def _shape(
    query: AllRunsQuery, viewer: User, owned: list[int] | None = None
) -> tuple[list[ColumnElement[bool]], list[list[ColumnElement[bool]]], dict[str, Any]]:
    """(scope, branches, bind values) of the query as `viewer` sees it; `owned`: the
    automations of a viewer who is not an admin, when their own ranges are read
    (`list_all_runs`). The comments name the index its ranges read (docs/indexes.md)."""
    params: dict[str, Any] = {}
    scope: list[ColumnElement[bool]] = []
    if not viewer.is_admin and owned is None:
        owns = select(automations.c.id).where(
            automations.c.user_id == _bound("viewer", automations.c.user_id)
        )
        # `+ 0`: checked on each run of the filter's ranges, never an index range of
        # its own (which would read every run of the user's automations and sort them).
        scope.append((runs_t.c.automation_id + 0).in_(owns.scalar_subquery()))
        params["viewer"] = viewer.id
    for i, r in enumerate(query.ranges):
        name = f"range_{i}"
        scope.append(
            getattr(runs_t.c.created_at, _RANGE_OPS[r.op])(_bound(name, runs_t.c.created_at))
        )
        params[name] = r.value
    statuses = list(query.statuses)
    triggers = list(query.triggers)
    of = [query.automation_id] if query.automation_id is not None else list(owned or [])
    if of:
        if triggers:
            names = [f"trigger_{i}" for i in range(len(triggers))]
            # `|| ''`: checked on each run, never a range of ix_runs_trigger_status_created.
            checked = runs_t.c.trigger.op("||")(literal_column("''"))
            scope.append(checked.in_([_bound(n, runs_t.c.trigger) for n in names]))
            params.update(zip(names, triggers, strict=True))
        # ix_runs_automation_status_created, or ix_runs_automation_created: one
        # range per (automation, status).
        triggers = []
    elif triggers or statuses:
        # Every run's trigger is one of Trigger's (reruns and retries keep their
        # original's), so "any trigger" is the merge of one range per trigger.
        # ix_runs_trigger_status_created.
        triggers = triggers or list(RUN_TRIGGERS)
        statuses = statuses or [s.value for s in RunStatus]
    # Else ix_runs_created.
    branches: list[list[ColumnElement[bool]]] = []
    for a in range(len(of)) or [None]:
        for t in range(len(triggers)) or [None]:
            for s in range(len(statuses)) or [None]:
                branch = []
                if a is not None:
                    name = f"automation_{a}"
                    branch.append(runs_t.c.automation_id == _bound(name, runs_t.c.automation_id))
                    params[name] = of[a]
                if t is not None:
                    branch.append(runs_t.c.trigger == _bound(f"trigger_{t}", runs_t.c.trigger))
                    params[f"trigger_{t}"] = triggers[t]
                if s is not None:
                    branch.append(runs_t.c.status == _bound(f"status_{s}", runs_t.c.status))
                    params[f"status_{s}"] = statuses[s]
                branches.append(branch)
    return scope, branches, params


def _cache_key(query: AllRunsQuery, viewer: User, owned: list[int] | None) -> tuple[Any, ...]:
    return (
        "all_runs",
        viewer.is_admin,
        query.automation_id is not None,
        None if owned is None else len(owned),
        len(query.statuses),
        len(query.triggers),
        tuple(r.op for r in query.ranges),
    )


# A viewer who is not an admin and owns at most this many automations (divided by
# the statuses filtered on) has the page merged from each automation's own ranges.
MERGED_RANGES = 32

_OWNED = Prepared(
    lambda: (
        select(automations.c.id)
        .where(automations.c.user_id == bindparam("viewer", type_=automations.c.user_id.type))
        .order_by(automations.c.id)
        .limit(bindparam("owned_limit", type_=Integer()))
    )
)


def list_all_runs(dialect: Dialect, query: AllRunsQuery, viewer: User) -> Steps[KeysetPage]:
    """One page of the runs `viewer` may see across automations (`RunRow`s), as steps
    (`store.prepared.Steps`).

    For a viewer who is not an admin, without an automation filter, one statement
    first reads their automations (ix_automations_user_id, at most MERGED_RANGES + 1):
    if they are few, the page merges the runs of each of them (one range per
    automation and status) and reads no one else's run; otherwise the filter's ranges
    are read with each run's automation checked (`_shape`)."""
    owned: list[int] | None = None
    if not viewer.is_admin and query.automation_id is None:
        values = {"viewer": viewer.id, "owned_limit": MERGED_RANGES + 1}
        ids = [row[0] for row in (yield Statement(_OWNED.for_dialect(dialect), values))]
        if not ids:
            return KeysetPage([], None, None)
        if len(ids) * max(1, len(query.statuses)) <= MERGED_RANGES:
            owned = ids
    scope, branches, params = _shape(query, viewer, owned)
    page = yield from keyset_steps(
        dialect,
        columns=RUN_COLUMNS,
        table_columns=runs_t.c,
        read_field="created_at",
        descending=query.sort.descending,
        key_index=_KEY_INDEX,
        scope=scope,
        cursor=query.cursor,
        per_page=query.per_page,
        params=params,
        cache_key=_cache_key(query, viewer, owned),
        branches=branches,
    )
    return replace(page, rows=[as_run_row(row) for row in page.rows])


def _matching(
    query: AllRunsQuery, viewer: User, finished: bool | None
) -> tuple[Any, dict[str, Any]]:
    """The filter's runs for `viewer` as one condition; `finished` keeps only finished
    (True) or unfinished (False) runs."""
    scope, branches, params = _shape(query, viewer)
    conditions = [and_(*branch) for branch in branches if branch]
    if conditions:
        scope.append(or_(*conditions))
    if finished is not None:
        stage = runs_t.c.run_stage == "finished"
        scope.append(stage if finished else ~stage)
    return and_(*scope) if scope else and_(runs_t.c.id > 0), params


def matching_run_ids(
    conn: Connection,
    query: AllRunsQuery,
    viewer: User,
    *,
    finished: bool | None = None,
    limit: int | None = None,
) -> list[int]:
    """The ids of the runs the filter matches for `viewer`, in the query's order (at
    most `limit`); `finished` keeps only finished (True) or unfinished (False) runs."""
    condition, params = _matching(query, viewer, finished)
    order = runs_t.c.created_at.desc() if query.sort.descending else runs_t.c.created_at.asc()
    tie = runs_t.c.id.desc() if query.sort.descending else runs_t.c.id.asc()
    statement = select(runs_t.c.id).where(condition).order_by(order, tie)
    if limit is not None:
        statement = statement.limit(limit)
    return [row[0] for row in conn.execute(statement, params)]


def count_matching(
    conn: Connection, query: AllRunsQuery, viewer: User, *, finished: bool | None = None
) -> int:
    """How many runs `matching_run_ids` would give without a limit."""
    condition, params = _matching(query, viewer, finished)
    statement = select(func.count()).select_from(runs_t).where(condition)
    return int(conn.execute(statement, params).scalar_one())


def automation_names(conn: Connection, ids: list[int]) -> dict[int, tuple[str, bool]]:
    """(name, deleted) of each automation in `ids` (the Runs page's column), one lookup."""
    if not ids:
        return {}
    rows = conn.execute(
        select(automations.c.id, automations.c.name, automations.c.deleted).where(
            automations.c.id.in_(sorted(set(ids)))
        )
    )
    return {row.id: (row.name, bool(row.deleted)) for row in rows}
