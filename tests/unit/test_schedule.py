from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from crontab import CronTab
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rpqueue.schedule import Cron, Every, Schedule, check_period, missed_runs, next_run

UTC = timezone.utc


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the host's tz database
        pytest.skip(f"time zone {name} not available")


MONDAY_NOON = ts(2024, 1, 1, 12)  # 2024-01-01 was a Monday


# --- Every --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_every", "period"),
    [(60, 60.0), (0.5, 0.5), (timedelta(minutes=5), 300.0), (timedelta(milliseconds=250), 0.25)],
)
def test_every_accepts_int_float_and_timedelta(run_every: float | timedelta, period: float) -> None:
    assert Every(run_every).period == period


def test_every_planned_times_are_epoch_multiples() -> None:
    every = Every(60)
    assert every.next_after(0.0) == 60.0
    assert every.next_after(59.9) == 60.0
    assert every.next_after(60.0) == 120.0
    assert every.next_after(MONDAY_NOON + 1) == MONDAY_NOON + 60
    assert Every(0.5).next_after(100.25) == 100.5
    assert Every(timedelta(hours=1)).next_after(MONDAY_NOON) == MONDAY_NOON + 3600


def test_every_float_period_never_returns_t() -> None:
    # 3 * 0.1 == 0.30000000000000004, so 0.3 itself is not a planned time.
    every = Every(0.1)
    assert every.next_after(0.3) > 0.3
    assert every.next_after(0.30000000000000004) > 0.30000000000000004


@pytest.mark.parametrize(
    "bad", [0, -1, 0.0, -0.5, math.nan, math.inf, -math.inf, timedelta(0), timedelta(seconds=-1)]
)
def test_every_rejects_non_positive_or_non_finite(bad: float | timedelta) -> None:
    with pytest.raises(ValueError, match="finite number of seconds > 0") as info:
        Every(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [(True, "bool"), (False, "bool"), ("60", "str"), (None, "NoneType"), (Decimal(1), "Decimal")],
)
def test_every_rejects_non_numbers(bad: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"not {type_name}$"):
        Every(bad)  # type: ignore[arg-type]


def test_every_equality_repr_describe() -> None:
    assert Every(60) == Every(60.0) == Every(timedelta(minutes=1))
    assert hash(Every(60)) == hash(Every(timedelta(minutes=1)))
    assert Every(60) != Every(61)
    assert repr(Every(1.5)) == "Every(1.5)"
    assert Every(60).describe() == "every 60s"
    assert Every(0.25).describe() == "every 0.25s"
    assert isinstance(Every(1), Schedule)


def test_non_finite_instants_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        Every(1).next_after(math.nan)
    with pytest.raises(ValueError, match="finite"):
        Cron("* * * * *").next_after(math.inf)


# --- check_period ---------------------------------------------------------------


def test_check_period_below_minimum_message() -> None:
    with pytest.raises(ValueError) as info:
        check_period(0.5, minimum=1, low_delay_okay=False)
    assert str(info.value) == (
        "periodic task period 0.5s is below MINIMUM_DELAY (1s); pass low_delay_okay=True to allow it"
    )


def test_check_period_minimum_handling() -> None:
    assert check_period(0.5, minimum=1, low_delay_okay=True) == 0.5
    assert check_period(1, minimum=1, low_delay_okay=False) == 1.0
    assert check_period(timedelta(minutes=2), minimum=1, low_delay_okay=False) == 120.0
    with pytest.raises(ValueError, match=r"period 0\.25s is below MINIMUM_DELAY \(0\.5s\)"):
        check_period(timedelta(milliseconds=250), minimum=0.5, low_delay_okay=False)


def test_check_period_still_validates_when_low_delay_okay() -> None:
    with pytest.raises(ValueError, match="got 0"):
        check_period(0, minimum=1, low_delay_okay=True)
    with pytest.raises(TypeError, match="not bool"):
        check_period(True, minimum=1, low_delay_okay=True)


# --- Cron -----------------------------------------------------------------------


def test_cron_weekday_name_in_day_field_means_weekday() -> None:
    cron = Cron("0 5 tue * *")
    assert utc(cron.next_after(MONDAY_NOON)) == datetime(2024, 1, 2, 5, tzinfo=UTC)
    assert utc(cron.next_after(ts(2024, 1, 2, 5))) == datetime(2024, 1, 9, 5, tzinfo=UTC)
    assert cron == Cron("0 5 * * tue") == Cron("0  5 * *  TUE")


def test_cron_standard_weekday_field() -> None:
    assert utc(Cron("0 5 * * tue").next_after(ts(2024, 1, 1, 4))) == datetime(2024, 1, 2, 5, tzinfo=UTC)
    assert utc(Cron("0 9 * * mon-fri").next_after(ts(2024, 1, 5, 10))) == datetime(2024, 1, 8, 9, tzinfo=UTC)
    assert utc(Cron("0 0 1 jun *").next_after(MONDAY_NOON)) == datetime(2024, 6, 1, tzinfo=UTC)


def test_cron_day_of_month_and_weekday_both_must_match() -> None:
    # Unlike Vixie cron (which ORs them), crontab requires both: Friday the 13th.
    assert utc(Cron("0 0 13 * fri").next_after(MONDAY_NOON)) == datetime(2024, 9, 13, tzinfo=UTC)


def test_every_second_cron_returns_exact_whole_seconds() -> None:
    cron = Cron("* * * * * *")
    assert cron.next_after(100.0) == 101.0
    assert cron.next_after(100.5) == 101.0
    assert cron.next_after(100.999999999) == 101.0
    assert cron.next_after(99.99999999999999) == 100.0
    assert cron.next_after(MONDAY_NOON + 0.25) == MONDAY_NOON + 1


def test_six_fields_are_seconds_first() -> None:
    cron = Cron("30 * * * * *")
    assert cron.next_after(MONDAY_NOON) == MONDAY_NOON + 30
    assert cron.next_after(MONDAY_NOON + 30) == MONDAY_NOON + 90
    assert Cron("*/15 0 12 * * *").next_after(MONDAY_NOON) == MONDAY_NOON + 15


def test_five_fields_run_on_the_minute() -> None:
    cron = Cron("* * * * *")
    assert cron.next_after(MONDAY_NOON) == MONDAY_NOON + 60
    assert cron.next_after(MONDAY_NOON + 59.5) == MONDAY_NOON + 60


def test_seven_fields_add_a_year() -> None:
    cron = Cron("0 0 12 1 1 * 2030")
    assert utc(cron.next_after(MONDAY_NOON)) == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert cron.next_after(ts(2030, 1, 1, 12)) == math.inf


def test_schedule_that_has_ended_gives_inf() -> None:
    past = Cron("0 0 0 1 1 * 2020")
    assert past.next_after(MONDAY_NOON) == math.inf
    assert next_run(past, MONDAY_NOON, MONDAY_NOON, never_skip=False) == math.inf
    assert Cron("* * * * *").next_after(ts(2100, 6, 1)) == math.inf


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", datetime(2024, 1, 1, 13, tzinfo=UTC)),
        ("@daily", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@MIDNIGHT", datetime(2024, 1, 2, tzinfo=UTC)),
        ("@weekly", datetime(2024, 1, 7, tzinfo=UTC)),
        ("@monthly", datetime(2024, 2, 1, tzinfo=UTC)),
        ("@yearly", datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_cron_aliases(alias: str, expected: datetime) -> None:
    assert utc(Cron(alias).next_after(MONDAY_NOON)) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "got 0"),
        ("* * * *", "got 4"),
        ("* * * * * * * *", "got 8"),
        ("x * * * *", "invalid range specifier"),
        ("61 * * * *", "out of range"),
        ("*/0 * * * *", "positive increment"),
        ("0 0 31 2 *", "never matches"),
        ("@reboot", "unknown alias"),
        ("0 0 * * * 2030", "out of range"),  # six fields: the last one is weekday
    ],
)
def test_bad_cron_expressions(expression: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        Cron(expression)
    message = str(info.value)
    assert message.startswith(f"invalid cron expression {expression!r}: ")
    assert reason in message


def test_cron_rejects_non_string() -> None:
    with pytest.raises(TypeError, match="not int"):
        Cron(5)  # type: ignore[arg-type]


def test_cron_describe_and_repr() -> None:
    assert Cron("0 5 * * tue").describe() == "cron '0 5 * * tue' (UTC)"
    berlin = zone("Europe/Berlin")
    assert Cron("0 9 * * *", tz=berlin).describe() == "cron '0 9 * * *' (Europe/Berlin)"
    assert "Europe/Berlin" in repr(Cron("0 9 * * *", tz=berlin))
    assert Cron("0 9 * * *", tz=berlin) != Cron("0 9 * * *")
    assert Cron("0 9 * * *").tz is UTC
    assert Cron("0 9 * * *").expression == "0 9 * * *"


# --- time zones -----------------------------------------------------------------


def test_cron_defaults_to_utc() -> None:
    assert utc(Cron("0 9 * * *").next_after(MONDAY_NOON)) == datetime(2024, 1, 2, 9, tzinfo=UTC)
    assert Cron("0 9 * * *", tz=UTC) == Cron("0 9 * * *")


def test_cron_follows_local_time_across_seasons() -> None:
    cron = Cron("0 9 * * *", tz=zone("Europe/Berlin"))
    assert utc(cron.next_after(MONDAY_NOON)) == datetime(2024, 1, 2, 8, tzinfo=UTC)
    assert utc(cron.next_after(ts(2024, 7, 1, 12))) == datetime(2024, 7, 2, 7, tzinfo=UTC)


def test_fixed_offset_zone() -> None:
    cron = Cron("0 9 * * *", tz=timezone(timedelta(hours=-3)))
    assert utc(cron.next_after(MONDAY_NOON)) == datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=1)


def test_repeated_wall_time_runs_once_when_clocks_go_back() -> None:
    ny = zone("America/New_York")  # 2024-11-03 02:00 EDT -> 01:00 EST
    cron = Cron("30 1 * * *", tz=ny)
    first = cron.next_after(ts(2024, 11, 2, 12))
    assert first == ts(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert cron.next_after(first) == ts(2024, 11, 4, 6, 30)  # 01:30 EST next day


def test_minutely_cron_pauses_through_the_repeated_hour() -> None:
    ny = zone("America/New_York")
    cron = Cron("* * * * *", tz=ny)
    last_edt = ts(2024, 11, 3, 5, 59)  # 01:59 EDT
    assert cron.next_after(last_edt) == ts(2024, 11, 3, 7)  # 02:00 EST
    inside_second_pass = ts(2024, 11, 3, 6, 15)  # 01:15 EST
    assert cron.next_after(inside_second_pass) == ts(2024, 11, 3, 7)


def test_skipped_wall_time_runs_at_the_jump() -> None:
    ny = zone("America/New_York")  # 2024-03-10 02:00 EST -> 03:00 EDT
    jump = ts(2024, 3, 10, 7)
    daily = Cron("30 2 * * *", tz=ny)
    assert daily.next_after(ts(2024, 3, 9, 12)) == jump
    assert daily.next_after(jump) == ts(2024, 3, 11, 6, 30)  # 02:30 EDT

    minutely = Cron("* * * * *", tz=ny)
    assert minutely.next_after(jump - 60) == jump  # 01:59 EST -> 03:00 EDT
    assert minutely.next_after(jump) == jump + 60


def test_pytz_style_zones_are_rejected() -> None:
    class FakePytz(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:  # pragma: no cover
            return timedelta(0)

        def dst(self, dt: datetime | None) -> timedelta:  # pragma: no cover
            return timedelta(0)

        def tzname(self, dt: datetime | None) -> str:  # pragma: no cover
            return "fake"

        def localize(self, dt: datetime) -> datetime:  # pragma: no cover
            return dt

    with pytest.raises(TypeError, match="pytz"):
        Cron("* * * * *", tz=FakePytz())


# --- next_run / missed_runs -------------------------------------------------------


def test_first_registration_uses_next_planned_time() -> None:
    assert next_run(Every(60), None, 125.0, never_skip=False) == 180.0
    assert next_run(Every(60), None, 125.0, never_skip=True) == 180.0
    assert next_run(Cron("* * * * * *"), None, 100.5, never_skip=False) == 101.0


def test_on_time_run_gives_following_slot_either_way() -> None:
    for never_skip in (False, True):
        assert next_run(Every(60), 120.0, 120.003, never_skip) == 180.0


def test_skip_mode_drops_missed_runs() -> None:
    assert next_run(Every(60), 120.0, 400.5, never_skip=False) == 420.0
    cron = Cron("0 * * * *")
    planned = ts(2024, 1, 1, 3)
    assert next_run(cron, planned, ts(2024, 1, 1, 7, 20), never_skip=False) == ts(2024, 1, 1, 8)


def test_never_skip_catches_up_one_run_at_a_time() -> None:
    every = Every(60)
    now = 400.5
    planned = 120.0
    due: list[float] = []
    while True:
        planned = next_run(every, planned, now, never_skip=True)
        if planned > now:
            break
        due.append(planned)
    assert due == [180.0, 240.0, 300.0, 360.0]
    assert planned == 420.0
    assert missed_runs(every, 120.0, now) == len(due)


def test_never_skip_with_cron() -> None:
    cron = Cron("0 * * * *")
    planned = ts(2024, 1, 1, 3)
    now = ts(2024, 1, 1, 7, 20)
    assert next_run(cron, planned, now, never_skip=True) == ts(2024, 1, 1, 4)
    assert missed_runs(cron, planned, now) == 4  # 04:00 .. 07:00


def test_early_processing_does_not_reuse_the_slot() -> None:
    assert next_run(Every(60), 180.0, 175.0, never_skip=False) == 240.0


def test_missed_runs_counts_half_open_interval() -> None:
    assert missed_runs(Every(60), 120.0, 120.0) == 0
    assert missed_runs(Every(60), 120.0, 100.0) == 0
    assert missed_runs(Every(60), 120.0, 179.9) == 0
    assert missed_runs(Every(60), 120.0, 180.0) == 1
    assert missed_runs(Every(0.1), 0.0, 1.0) == 10
    assert missed_runs(Cron("* * * * * *"), 100.0, 110.0) == 10
    assert missed_runs(Cron("* * * * * *"), 100.0, 110.0, limit=3) == 3
    assert missed_runs(Every(1), 0.0, 1e6, limit=3) == 1_000_000  # exact, no walk needed


# --- properties -----------------------------------------------------------------

instants = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
periods = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=10**9).map(lambda us: timedelta(microseconds=us)),
)


@given(period=periods, a=instants, b=instants)
def test_every_properties(period: float | timedelta, a: float, b: float) -> None:
    every = Every(period)
    p = every.period
    lo, hi = sorted((a, b))
    n_lo, n_hi = every.next_after(lo), every.next_after(hi)
    assert n_lo > lo
    assert n_hi > hi
    assert n_lo <= n_hi
    k = round(n_lo / p)
    assert n_lo == k * p
    assert (k - 1) * p <= lo  # no planned time was skipped


# (expression, zone, the same schedule in crontab's own 7-field syntax)
CRON_CASES = [
    ("* * * * * *", "UTC", "* * * * * * *"),
    ("*/7 * * * * *", "UTC", "*/7 * * * * * *"),
    ("* * * * *", "America/New_York", "0 * * * * * *"),
    ("30 1 * * *", "America/New_York", "0 30 1 * * * *"),
    ("30 2 * * *", "America/New_York", "0 30 2 * * * *"),
    ("0 5 tue * *", "UTC", "0 0 5 * * tue *"),
    ("*/20 * * * *", "Australia/Lord_Howe", "0 */20 * * * * *"),  # 30-minute DST shifts
    ("15 2,3 * * *", "Europe/Berlin", "0 15 2,3 * * * *"),
    ("0 0 29 feb *", "UTC", "0 0 0 29 feb * *"),
    ("0 9 * * mon-fri", "Asia/Kolkata", "0 0 9 * * mon-fri *"),
]


# crontab stops at 2099, and "0 0 29 feb *" has no run after 2096.
cron_instants = st.floats(min_value=0, max_value=3.7e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CRON_CASES), a=cron_instants, b=cron_instants)
def test_cron_properties(case: tuple[str, str, str], a: float, b: float) -> None:
    expression, zone_name, seven_fields = case
    tz = zone(zone_name)
    cron = Cron(expression, tz=tz)
    lo, hi = sorted((a, b))
    n_lo, n_hi = cron.next_after(lo), cron.next_after(hi)
    assert n_lo > lo
    assert n_hi > hi
    assert n_lo <= n_hi
    assert n_lo == math.floor(n_lo)
    # Each result is either a matching local wall time or the instant the
    # clocks jumped over one.
    local = datetime.fromtimestamp(n_lo, tz)
    matches = CronTab(seven_fields).test(local.replace(tzinfo=None))
    jumped = datetime.fromtimestamp(n_lo - 1, tz).utcoffset() != local.utcoffset()
    assert matches or jumped


@settings(max_examples=200, deadline=None)
@given(t=cron_instants)
def test_cron_utc_results_match_crontab_directly(t: float) -> None:
    for expression in ("*/7 * * * * *", "15 */3 * * *", "0 0 l * *", "0 12 * * l5"):
        cron = Cron(expression)
        fields = expression.split()
        seven = ["0", *fields, "*"] if len(fields) == 5 else [*fields, "*"]
        expected = CronTab(" ".join(seven)).next(
            datetime.fromtimestamp(math.floor(t), UTC).replace(tzinfo=None),
            default_utc=True,
            return_datetime=True,
        )
        assert utc(cron.next_after(t)) == expected.replace(tzinfo=UTC)


@functools.cache
def offset_changes(zone_name: str, year: int) -> tuple[int, ...]:
    tz = zone(zone_name)

    def offset(u: int) -> timedelta | None:
        return datetime.fromtimestamp(u, tz).utcoffset()

    found = []
    step = 6 * 3600  # real zones never change offset twice within six hours
    u = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    while u < end:
        if offset(u) != offset(u + step):
            lo, hi = u, u + step
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == offset(lo) else (lo, mid)
            found.append(hi)
        u += step
    return tuple(found)


def brute_force_next(expression_7: str, tz: tzinfo, t: float) -> int:
    """Reference model: each matching wall time is due once the wall clock first reaches it."""
    matcher = CronTab(expression_7)

    def wall(u: int) -> datetime:
        return datetime.fromtimestamp(u, tz).replace(tzinfo=None)

    u = math.floor(t) - 4 * 3600
    high = wall(u)
    while True:
        u += 1
        now_wall = wall(u)
        if now_wall > high:
            w = high + timedelta(seconds=1)
            due = False
            while w <= now_wall and not due:
                due = matcher.test(w)
                w += timedelta(seconds=1)
            high = now_wall
            if due and u > t:
                return u


NEAR_CHANGE_CASES = [
    ("* * * * *", "0 * * * * * *"),
    ("*/20 * * * *", "0 */20 * * * * *"),
    ("*/45 * * * * *", "*/45 * * * * * *"),
    ("10 0-3 * * *", "0 10 0-3 * * * *"),
]


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(NEAR_CHANGE_CASES),
    zone_name=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]),
    year=st.integers(min_value=1990, max_value=2080),
    which=st.integers(min_value=0, max_value=1),
    delta=st.floats(min_value=-3 * 3600, max_value=3 * 3600, allow_nan=False),
)
def test_cron_matches_reference_model_around_dst_changes(
    case: tuple[str, str], zone_name: str, year: int, which: int, delta: float
) -> None:
    changes = offset_changes(zone_name, year)
    assume(len(changes) == 2)
    t = changes[which] + delta
    tz = zone(zone_name)
    expression, seven = case
    assert Cron(expression, tz=tz).next_after(t) == brute_force_next(seven, tz, t)
