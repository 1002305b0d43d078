"""Retention of scheduled backups (daily 7, weekly 4, monthly 12), and the server's schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SettableClock
from application.backup_retention import Retention, backup_name, prune, time_of, to_keep
from application.backup_schedule import BackupPlan, ScheduledBackups, plan_from_environ
from domain.errors import DomainError

moments = st.lists(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 31))
    .map(lambda m: m.replace(microsecond=0, tzinfo=UTC)),
    max_size=120)
POLICY = Retention()


def newest_by(period, backups: list[datetime], count: int) -> set[datetime]:
    """The oracle: group by period, take the ``count`` newest groups, the newest of each."""
    groups: dict[object, list[datetime]] = {}
    for moment in backups:
        groups.setdefault(period(moment), []).append(moment)
    newest_groups = sorted(groups.values(), key=max, reverse=True)[:count]
    return {max(group) for group in newest_groups}


PERIODS = {"daily": lambda m: m.date(), "weekly": lambda m: m.isocalendar()[:2],
           "monthly": lambda m: (m.year, m.month)}


@given(moments)
def test_kept_backups_are_exactly_the_newest_of_the_newest_days_weeks_and_months(backups):
    kept = to_keep(backups, POLICY)

    expected = set().union(*(newest_by(period, backups, getattr(POLICY, name))
                             for name, period in PERIODS.items()))
    assert kept == expected
    assert len(kept) <= POLICY.daily + POLICY.weekly + POLICY.monthly
    if backups:
        assert max(backups) in kept


@given(moments)
def test_applying_the_retention_again_keeps_everything_it_kept(backups):
    kept = to_keep(backups, POLICY)

    assert to_keep(kept, POLICY) == kept


@given(moments, st.integers(0, 10), st.integers(0, 6), st.integers(0, 14))
def test_fewer_periods_never_keep_a_backup_more_periods_would_drop(backups, d, w, m):
    small, large = Retention(d, w, m), Retention(d + 1, w + 1, m + 1)

    assert to_keep(backups, small) <= to_keep(backups, large)


def test_two_backups_a_day_for_ten_days_keep_each_days_later_one_of_the_last_seven():
    start = datetime(2026, 11, 20, tzinfo=UTC)
    backups = [start + timedelta(days=d, hours=h) for d in range(10) for h in (1, 13)]

    kept = to_keep(backups, POLICY)

    days = sorted(m.date() for m in kept if m.hour == 13)
    assert days[-7:] == [(start + timedelta(days=d)).date() for d in range(3, 10)]
    assert all(m.hour == 13 for m in kept)  # never the earlier backup of a day


@settings(max_examples=25, deadline=None)
@given(moments)
def test_prune_deletes_exactly_the_backups_not_kept_with_their_hash_files(tmp_path_factory,
                                                                          backups):
    folder = tmp_path_factory.mktemp("backups")
    for moment in backups:
        (folder / backup_name(moment)).write_text("b")
        (folder / (backup_name(moment) + ".sha256")).write_text("h")
    (folder / "tradetape-notes.tar.gz").write_text("mine")  # not a scheduled backup's name

    gone = prune(folder, POLICY)

    kept = to_keep(backups, POLICY)
    left = {p.name for p in folder.iterdir()}
    assert {time_of(p.name) for p in gone} == set(backups) - kept
    assert left == ({backup_name(m) for m in kept} |
                    {backup_name(m) + ".sha256" for m in kept} | {"tradetape-notes.tar.gz"})


def test_a_scheduled_backups_name_gives_back_its_time():
    moment = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)

    assert backup_name(moment) == "tradetape-20261206T010203Z.tar.gz"
    assert time_of(backup_name(moment)) == moment
    assert time_of("tradetape-20261306T010203Z.tar.gz") is None
    assert time_of("backup.tar.gz") is None


# --- the schedule ---------------------------------------------------------------------------


def test_backups_are_off_unless_every_is_set_and_need_a_folder():
    assert plan_from_environ({}) is None
    assert plan_from_environ({"TRADETAPE_BACKUP_DIR": "/b"}) is None
    assert plan_from_environ({"TRADETAPE_BACKUP_DIR": "/b", "TRADETAPE_BACKUP_EVERY": "6"}
                             ) == BackupPlan(Path("/b"), timedelta(hours=6))
    for every in ("0", "-1", "soon", "nan", "1e9"):
        with pytest.raises(DomainError) as refused:
            plan_from_environ({"TRADETAPE_BACKUP_DIR": "/b", "TRADETAPE_BACKUP_EVERY": every})
        assert refused.value.code == "INVALID_SETTING"
    with pytest.raises(DomainError, match="TRADETAPE_BACKUP_DIR"):
        plan_from_environ({"TRADETAPE_BACKUP_EVERY": "24"})


def test_a_backup_is_made_when_the_newest_one_is_as_old_as_the_interval(tmp_path):
    clock = SettableClock(datetime(2026, 12, 6, tzinfo=UTC))
    made: list[Path] = []

    def make(path: Path) -> None:
        path.write_text("backup")
        made.append(path)

    schedule = ScheduledBackups(BackupPlan(tmp_path / "b", timedelta(hours=6)), make, clock)

    assert schedule.run_due() == tmp_path / "b" / "tradetape-20261206T000000Z.tar.gz"
    clock.current += timedelta(hours=5, minutes=59)
    assert schedule.run_due() is None
    assert schedule.due_in() == timedelta(minutes=1)
    clock.current += timedelta(minutes=1)
    assert schedule.run_due() is not None
    clock.current += timedelta(days=30)
    for _ in range(40):  # a month and more of backups every six hours: pruned as it goes
        schedule.run_due()
        clock.current += timedelta(hours=6)
    left = sorted(time_of(p.name) for p in (tmp_path / "b").iterdir())
    assert len(made) == 42 and left == sorted(to_keep(left, POLICY))
    assert len(left) <= 7 + 4 + 12
