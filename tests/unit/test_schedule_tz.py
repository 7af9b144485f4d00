"""Cron schedules in a named time zone (issue 22): wall-clock times across
DST changes, zone validation, and the zone published with the task."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from rpqueue import RPQueue
from rpqueue.schedule import Cron, check_zone, next_run

UTC = timezone.utc
PARIS = "Europe/Paris"


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def runs(cron: Cron, start: float, count: int) -> list[datetime]:
    out, t = [], start
    for _ in range(count):
        t = cron.next_after(t)
        out.append(utc(t))
    return out


def test_daily_run_keeps_its_local_hour_across_spring_forward() -> None:
    # Paris moves from UTC+1 to UTC+2 at 01:00 UTC on 2024-03-31.
    got = runs(Cron("0 5 * * *", tz=PARIS), ts(2024, 3, 29, 12), 3)
    assert got == [datetime(2024, 3, 30, 4, tzinfo=UTC),  # 05:00 CET
                   datetime(2024, 3, 31, 3, tzinfo=UTC),  # 05:00 CEST
                   datetime(2024, 4, 1, 3, tzinfo=UTC)]


def test_daily_run_keeps_its_local_hour_across_fall_back() -> None:
    # Paris moves from UTC+2 to UTC+1 at 01:00 UTC on 2024-10-27.
    got = runs(Cron("0 5 * * *", tz=PARIS), ts(2024, 10, 25, 12), 3)
    assert got == [datetime(2024, 10, 26, 3, tzinfo=UTC),
                   datetime(2024, 10, 27, 4, tzinfo=UTC),
                   datetime(2024, 10, 28, 4, tzinfo=UTC)]


def test_a_skipped_wall_time_runs_once_at_the_jump() -> None:
    # 02:30 does not exist in Paris on 2024-03-31: clocks jump 02:00 -> 03:00.
    got = runs(Cron("30 2 * * *", tz=PARIS), ts(2024, 3, 30, 12), 2)
    assert got == [datetime(2024, 3, 31, 1, tzinfo=UTC),  # the instant of the jump
                   datetime(2024, 4, 1, 0, 30, tzinfo=UTC)]


def test_a_repeated_wall_time_runs_once_on_its_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 2024-10-27 (00:30 and 01:30 UTC).
    cron = Cron("30 2 * * *", tz=PARIS)
    got = runs(cron, ts(2024, 10, 26, 12), 2)
    assert got == [datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
                   datetime(2024, 10, 28, 1, 30, tzinfo=UTC)]
    # A worker processing the first run during the repeated hour does not
    # plan the second occurrence.
    after = next_run(cron, ts(2024, 10, 27, 0, 30), ts(2024, 10, 27, 1, 40), never_skip=False)
    assert utc(after) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)


def test_hourly_cron_over_fall_back_fires_each_wall_hour_once() -> None:
    got = runs(Cron("0 * * * *", tz=PARIS), ts(2024, 10, 26, 22, 30), 4)
    # 01:00 CEST, 02:00 CEST, (02:00 CET is a repeat: skipped), 03:00 CET, 04:00 CET
    assert got == [datetime(2024, 10, 26, 23, tzinfo=UTC), datetime(2024, 10, 27, 0, tzinfo=UTC),
                   datetime(2024, 10, 27, 2, tzinfo=UTC), datetime(2024, 10, 27, 3, tzinfo=UTC)]


def test_zone_names_and_zoneinfo_are_the_same_schedule() -> None:
    assert Cron("0 5 * * *", tz=PARIS) == Cron("0 5 * * *", tz=ZoneInfo(PARIS))
    assert Cron("0 5 * * *", tz="UTC") == Cron("0 5 * * *")
    assert Cron("0 5 * * *", tz=PARIS).describe() == "cron '0 5 * * *' (Europe/Paris)"


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Pariss'"):
        Cron("0 5 * * *", tz="Europe/Pariss")
    with pytest.raises(ValueError, match=re.escape("unknown time zone '../etc/passwd'")):
        check_zone("../etc/passwd")
    with pytest.raises(TypeError, match="tz must be an IANA zone name or a tzinfo, not int"):
        Cron("0 5 * * *", tz=2)  # type: ignore[arg-type]


def test_cron_task_takes_tz_and_publishes_it() -> None:
    app = RPQueue("unit-tz-app", "unit-tz-app:")

    @app.cron_task("0 5 * * *", tz=PARIS, queue="tzq")
    def morning() -> None:
        pass

    settings = morning.settings()
    assert settings["tz"] == PARIS
    assert settings["schedule"] == "cron '0 5 * * *' (Europe/Paris)"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        app.cron_task("0 5 * * *", tz="Mars/Olympus")
