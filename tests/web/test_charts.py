"""The numbers behind the pages: chart geometry, durations, runs per day as kept and recounted,
the log's tail, on both databases where SQL is involved."""

from __future__ import annotations

import re
from dataclasses import replace

from web_site import NOW

from conveyor.clock import ManualClock
from conveyor.domain.automations import Automation, AutomationType, Trigger
from conveyor.domain.runs import RunStage, RunStatus
from conveyor.domain.schedules import schedule_of, upcoming_slots
from conveyor.store import run_views
from conveyor.store import runs as runs_store
from conveyor.store.database import Database
from conveyor.testing.seed import Seeder
from conveyor.web import presentation
from conveyor.web.automation_page import next_times
from conveyor.web.templating import STATIC, status_icon

DAY = presentation.DAY_US
TODAY = NOW // DAY
SECOND = 1_000_000


def test_durations_read_as_people_write_them() -> None:
    assert presentation.duration(None) == "—"
    assert presentation.duration(850_000) == "850 ms"
    assert presentation.duration(42 * SECOND) == "42 s"
    assert presentation.duration(185 * SECOND) == "3 min 05 s"
    assert presentation.duration((2 * 3600 + 7 * 60) * SECOND) == "2 h 07 min"
    assert presentation.run_duration(10, None, 25) == 15  # still running: so far
    assert presentation.run_duration(10, 12, 25) == 2


def test_daily_chart_stacks_statuses_in_proportion_to_the_busiest_day() -> None:
    counts = [(TODAY, "success", 3), (TODAY, "failure", 1), (TODAY - 1, "success", 2)]
    chart = presentation.daily_chart([*counts, (TODAY - 40, "success", 9)], TODAY, 30, 300, 100)
    assert chart.max_total == 4 and chart.total == 6  # the day 40 days ago is outside
    today_bars = [b for b in chart.bars if b.x > 290]
    assert [(b.status, b.height) for b in today_bars] == [("success", 75.0), ("failure", 25.0)]
    # Stacked: success at the bottom, failure on top of it, touching.
    assert today_bars[0].y == 25.0 and today_bars[1].y == 0.0
    yesterday = [b for b in chart.bars if 280 < b.x < 290]
    assert [(b.status, b.height, b.y) for b in yesterday] == [("success", 50.0, 50.0)]
    assert [row.total for row in chart.days][-2:] == [2, 4]
    assert len(chart.days) == 30


def test_duration_chart_scales_to_the_longest_run() -> None:
    chart = presentation.duration_chart(
        [(1, "success", 10 * SECOND), (2, "failure", 40 * SECOND)], 200, 80
    )
    assert [b.height for b in chart.bars] == [20.0, 80.0]
    assert chart.longest == "40 s"
    assert chart.bars[1].label == "Run 2: 40 s, failure"


def test_runs_per_day_counts_by_utc_day_and_status(db: Database) -> None:
    seed = Seeder(db, ManualClock(NOW))
    account = seed.account("alice")
    automation = seed.automation(account)
    other = seed.automation(account)
    midnight = TODAY * DAY
    seed.run(automation, created_at=midnight, outcome=(1, 0))  # first instant of today
    seed.run(automation, created_at=midnight - 1, outcome=(0, 1))  # last of yesterday
    seed.run(automation, created_at=midnight - 1, outcome=(1, 1))
    seed.run(automation, created_at=midnight + 5, stage=RunStage.EXECUTING)
    seed.run(automation, created_at=midnight - 3 * DAY, outcome=(1, 0))  # outside 2 days
    seed.run(other, created_at=midnight, outcome=(1, 0))  # another automation
    with db.read() as conn:
        counts = run_views.runs_per_day(conn, automation, TODAY - 1, 2)
    assert sorted(counts) == [
        (TODAY - 1, "failure", 1),
        (TODAY - 1, "partial_failure", 1),
        (TODAY, "running", 1),
        (TODAY, "success", 1),
    ]


def test_daily_counts_are_current_at_once_and_equal_the_recount(db: Database) -> None:
    clock = ManualClock(NOW)
    seed = Seeder(db, clock)
    alice = seed.account("alice")
    automation, other = seed.automation(alice), seed.automation(alice)
    yesterday = seed.run(automation, created_at=NOW - DAY, stage=RunStage.EXECUTING)

    def counts() -> list[tuple[int, str, int]]:
        with db.read() as conn:
            kept = run_views.kept_runs_per_day(conn, automation, TODAY - 29, 30)
            assert kept == sorted(run_views.runs_per_day(conn, automation, TODAY - 29, 30))
            # The automation page reads the same counts and recent runs in one statement.
            for newest in (1, 3, 30):
                recent = run_views.recent_runs(conn, [automation], newest)[automation]
                together = run_views.charts_data(conn, automation, newest, TODAY - 29, 30)
                assert together == (recent, kept)
            return kept

    assert counts() == [(TODAY - 1, "running", 1)]
    with db.write() as conn:
        runs_store.finish_run(conn, yesterday.id, clock.now())
    seed.run(automation, created_at=NOW, outcome=(1, 0))
    seed.run(automation, created_at=NOW, outcome=(1, 1))
    seed.run(automation, created_at=NOW - 29 * DAY, outcome=(0, 1))  # first day of the chart
    seed.run(automation, created_at=NOW - 30 * DAY, outcome=(0, 1))  # one day before it
    seed.run(other, created_at=NOW, outcome=(1, 0))
    # No cache: a past day's finish shows on the next read.
    assert counts() == [
        (TODAY - 29, "failure", 1),
        (TODAY - 1, "success", 1),
        (TODAY, "partial_failure", 1),
        (TODAY, "success", 1),
    ]


def test_message_page_reads_the_tail_pages_and_filters(db: Database) -> None:
    seed = Seeder(db, ManualClock(NOW))
    automation = seed.automation(seed.account("alice"))
    texts = [f"line {n}" for n in range(7)] + ["100% done_ok", "100x doneXok"]
    run = seed.run(automation, stage=RunStage.EXECUTING, messages=texts)
    with db.read() as conn:
        tail = run_views.message_page(conn, run.id, 3)
        everything = run_views.message_page(conn, run.id, 20)
        earlier = run_views.message_page(conn, run.id, 3, before=tail.lines[0][0])
        later = run_views.message_page(conn, run.id, 3, after=earlier.lines[-1][0])
        found = run_views.message_page(conn, run.id, 10, search="LINE 3")
        # LIKE's wildcards in the search are plain text.
        literal = run_views.message_page(conn, run.id, 10, search="100% done_")
        errors_only = run_views.message_page(conn, run.id, 10, level="error")
    assert [line[3] for line in tail.lines] == ["line 6", "100% done_ok", "100x doneXok"]
    assert tail.has_earlier and not tail.has_later
    assert len(everything.lines) == 9 and not everything.has_earlier
    assert [line[3] for line in earlier.lines] == ["line 3", "line 4", "line 5"]
    assert earlier.has_earlier and earlier.has_later
    assert [line[3] for line in later.lines] == [line[3] for line in tail.lines]
    assert later.has_earlier and not later.has_later
    assert [line[3] for line in found.lines] == ["line 3"]
    assert [line[3] for line in literal.lines] == ["100% done_ok"]
    assert errors_only.lines == [] and not errors_only.has_earlier


def test_next_times_are_remembered_only_while_they_are_the_next_ones() -> None:
    """The automation page's next five slots, kept per schedule, equal a fresh
    computation at every instant: before, at and after the first slot, and after the
    schedule changes or the automation is disabled."""
    daily = Automation(
        id=1,
        user_id=1,
        automation=AutomationType.CREATE_FOLDER,
        trigger=Trigger.DAILY,
        interval="day",
        schedule_times_of_day=("06:00", "18:00"),
        schedule_time_zone="Europe/Paris",
    )

    def fresh(automation: Automation, at: int) -> list[int]:
        schedule = schedule_of(automation)
        assert schedule is not None
        return upcoming_slots(schedule, at, 5)

    first = fresh(daily, NOW)
    assert [t.at for t in next_times(daily, NOW)] == first
    for at in (NOW + 1, first[0] - 1, first[0], first[0] + 1, first[2]):
        assert [t.at for t in next_times(daily, at)] == fresh(daily, at), at
    assert [t.at for t in next_times(daily, NOW)] == first  # an earlier instant again
    moved = replace(daily, schedule_times_of_day=("07:30",))
    assert [t.at for t in next_times(moved, NOW)] == fresh(moved, NOW) != first
    assert next_times(replace(daily, disabled=True), NOW) == []


def test_every_status_has_a_colour_and_an_icon_of_its_own() -> None:
    """A badge, run-strip mark, chart bar and legend swatch for each status; the
    marks carry a white icon, so a mark without a background would be invisible."""
    css = (STATIC / "conveyor.css").read_text()
    icons = {str(status_icon(status.value)) for status in RunStatus}
    assert len(icons) == len(RunStatus)
    for status in RunStatus:
        for kind in ("status", "mark", "bar", "swatch"):
            assert re.search(rf"\.{kind}-{status.value}\b[^{{]*\{{", css), (kind, status)
