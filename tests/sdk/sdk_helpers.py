"""Seeding and expectations shared by the SDK tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor import sdk
from conveyor.domain.runs import AutomationRun as StoredRun
from conveyor.domain.runs import RunStage
from conveyor.testing.seed import Account, Seeder

# Whole seconds, as the API shows them, one second apart: the order is known.
BASE_US = 1_700_000_000_000_000


@dataclass
class Seeded:
    account: Account
    automation_id: int
    runs: list[StoredRun]  # in creation order

    def by_status(self, status: str) -> list[StoredRun]:
        return [run for run in self.runs if run.status == status]


def seed_runs(seed: Seeder, account: Account, count: int) -> Seeded:
    """`count` runs cycling through success, failure, partial_failure and executing."""
    automation = seed.automation(account)
    shapes: list[dict[str, object]] = [
        {"outcome": (2, 0)},
        {"outcome": (0, 3)},
        {"outcome": (1, 1)},
        {"stage": RunStage.EXECUTING},
    ]
    runs = [
        seed.run(automation, created_at=BASE_US + i * 1_000_000, **shapes[i % 4])  # type: ignore[arg-type]
        for i in range(count)
    ]
    return Seeded(account, automation, runs)


def as_datetime(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us // 1_000_000, UTC)


def expected_fields(run: StoredRun) -> tuple[object, ...]:
    """What the SDK must return for a stored run, all fields but the signed URL."""
    return (
        run.id,
        run.automation_id,
        as_datetime(run.completed_at),
        as_datetime(run.created_at),
        as_datetime(run.runtime),
        str(run.status),
        str(run.run_stage),
        run.successful_operations,
        run.failed_operations,
    )


def fields_of(record: sdk.AutomationRun) -> tuple[object, ...]:
    return (
        record.id,
        record.automation_id,
        record.completed_at,
        record.created_at,
        record.runtime,
        record.status,
        record.run_stage,
        record.successful_operations,
        record.failed_operations,
    )
