"""conveyor.sdk's all-runs view and bulk actions against the live server, both databases."""

from __future__ import annotations

import pytest
from sdk_helpers import BASE_US, Seeded

from conveyor import sdk
from conveyor.testing.seed import Seeder


def test_all_runs_pages_across_automations_with_list_filters(
    client: sdk.Client, seeded: Seeded, seed: Seeder
) -> None:
    other = seed.automation(seeded.account)
    late = seed.run(other, created_at=BASE_US + 60_000_000, outcome=(0, 1))
    wanted = [late, *reversed(seeded.by_status("failure") + seeded.by_status("partial_failure"))]
    wanted = sorted(wanted, key=lambda r: (r.created_at, r.id), reverse=True)
    page = client.automation_run.all_runs(
        {"filter": {"status": ["failure", "partial_failure"]}, "per_page": 2}
    )
    assert all(type(record) is sdk.AutomationRun for record in page)
    assert [r.id for r in page.auto_paging_iter()] == [r.id for r in wanted]
    oldest = client.automation_run.all_runs(
        {
            "sort_by": {"created_at": "asc"},
            "filter": {"automation_id": seeded.automation_id},
            "filter_lt": {"created_at": "2023-11-14T22:13:22Z"},
        }
    )
    assert [r.id for r in oldest] == [r.id for r in seeded.runs[:2]]
    with pytest.raises(sdk.InvalidFilterParamValueError):
        client.automation_run.all_runs({"filter": {"trigger": "cron"}})


def test_bulk_dry_run_changes_nothing(client: sdk.Client, seeded: Seeded) -> None:
    preview = client.automation_run.bulk_cancel(
        {"filter": {"automation_id": seeded.automation_id}}, dry_run=True
    )
    unfinished = [r.id for r in reversed(seeded.runs) if r.completed_at is None]
    assert preview == {
        "action": "cancel",
        "dry_run": True,
        "count": len(unfinished),
        "run_ids": unfinished,
    }
    before = [(r.id, r.status) for r in client.automation_run.all_runs({"per_page": 100})]
    rerun = client.automation_run.bulk_rerun({"filter": {"status": "success"}}, dry_run=True)
    assert rerun["count"] == len(seeded.by_status("success"))
    after = [(r.id, r.status) for r in client.automation_run.all_runs({"per_page": 100})]
    assert after == before
