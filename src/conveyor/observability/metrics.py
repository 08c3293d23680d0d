"""Prometheus metrics: their definitions (the list docs/operations.md documents) and rendering.

Counters and histograms live in this process; with PROMETHEUS_MULTIPROC_DIR
set *before* Conveyor starts, prometheus_client keeps them in files there and
`render` adds up every process that served (N API processes behind a proxy,
or uvicorn workers). Queue depths are not counted as events but read from
the database at scrape time, so they are right whichever process changed
the runs, and after a restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from conveyor.clock import Clock
from conveyor.domain.runs import RunStage
from conveyor.store.database import Database
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import workers as workers_t

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_SECONDS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

RUNS_CREATED = Counter("conveyor_runs_created", "Automation runs created, by trigger.", ["trigger"])
RUNS_FINISHED = Counter(
    "conveyor_runs_finished", "Automation runs finished, by final status.", ["status"]
)
OPERATIONS = Counter(
    "conveyor_operations", "Operations performed by runs, by outcome.", ["outcome"]
)
RUN_DURATION = Histogram(
    "conveyor_run_duration_seconds",
    "Time from a run's creation to its completion.",
    buckets=_SECONDS,
)
QUEUE_WAIT = Histogram(
    "conveyor_run_queue_wait_seconds",
    "Time a finished run waited in a queue before a worker took it "
    "(queue=planning: created to planning; queue=execution: planned to executing).",
    ["queue"],
    buckets=_SECONDS,
)
LEASE_LOSSES = Counter(
    "conveyor_lease_losses",
    "Leases that ran out while a worker held them (the run was taken over by another worker).",
)
SCHEDULER_LAG = Histogram(
    "conveyor_scheduler_lag_seconds",
    "For runs created for an earlier logical time (schedule slots): creation minus runtime.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
HTTP_REQUESTS = Counter(
    "conveyor_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "conveyor_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Stages a run waits or works in; `finished` is left out (it only grows, and the
# counters above say how runs finished).
OPEN_STAGES: tuple[RunStage, ...] = tuple(
    stage for stage in RunStage if stage is not RunStage.FINISHED
)
QUEUES: tuple[RunStage, ...] = (RunStage.QUEUED_FOR_PLANNING, RunStage.QUEUED_FOR_EXECUTION)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: queue depths, oldest waits, live workers."""

    def __init__(self, db: Database, clock: Clock, heartbeat_timeout: float) -> None:
        self.db = db
        self.clock = clock
        self.heartbeat_us = int(heartbeat_timeout * 1_000_000)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "conveyor_database_up", "1 if the scrape could read the database, else 0."
        )
        try:
            depth, oldest, alive = self._read()
        except Exception:  # a scrape must still answer, saying the database is down
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        runs = GaugeMetricFamily(
            "conveyor_runs_in_stage",
            "Unfinished runs in each stage (queue depth for the queued_ stages).",
            labels=["stage"],
        )
        for stage in OPEN_STAGES:
            runs.add_metric([stage.value], depth.get(stage.value, 0))
        yield runs
        age = GaugeMetricFamily(
            "conveyor_queue_oldest_age_seconds",
            "Age of the oldest run waiting in each queue (0 when the queue is empty).",
            labels=["stage"],
        )
        for queue in QUEUES:
            age.add_metric([queue.value], oldest.get(queue.value, 0.0))
        yield age
        workers = GaugeMetricFamily(
            "conveyor_workers_alive",
            "Engine processes whose last heartbeat is within CONVEYOR_HEARTBEAT_TIMEOUT.",
        )
        workers.add_metric([], alive)
        yield workers

    def _read(self) -> tuple[dict[str, int], dict[str, float], int]:
        now = self.clock.now()
        with self.db.read() as conn:
            depth = {
                stage: int(count)
                for stage, count in conn.execute(
                    select(runs_t.c.run_stage, func.count())
                    .where(runs_t.c.run_stage.in_([s.value for s in OPEN_STAGES]))
                    .group_by(runs_t.c.run_stage)
                )
            }
            oldest: dict[str, float] = {}
            for stage in QUEUES:
                # Ids grow with creation time, so the lowest id is the oldest (index on stage, id).
                created = conn.execute(
                    select(runs_t.c.created_at)
                    .where(runs_t.c.run_stage == stage.value)
                    .order_by(runs_t.c.id)
                    .limit(1)
                ).scalar()
                if created is not None:
                    oldest[stage.value] = max(0.0, (now - created) / 1_000_000)
            alive = conn.execute(
                select(func.count())
                .select_from(workers_t)
                .where(workers_t.c.heartbeat_at >= now - self.heartbeat_us)
            ).scalar_one()
        return depth, oldest, int(alive)


def render(db_collector: Collector | None) -> bytes:
    """The text exposition of every metric: this process's (or all processes') and the DB's."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if db_collector is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(db_collector)
        body += generate_latest(scrape)
    return body
