"""Next-run arithmetic for periodic and cron tasks.

Everything here is pure: callers pass ``now`` (and any other instant) as a
float unix timestamp, normally taken from Redis ``TIME``, so every worker
computes the same planned instants no matter how its own clock drifts.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol, TypeAlias, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crontab import CronTab

__all__ = [
    "Cron",
    "Every",
    "Period",
    "Schedule",
    "check_period",
    "check_zone",
    "missed_runs",
    "next_run",
]

Period: TypeAlias = float | timedelta


@runtime_checkable
class Schedule(Protocol):
    def next_after(self, t: float) -> float:
        """First planned run strictly after ``t``; ``math.inf`` if there is none."""
        ...

    def describe(self) -> str: ...


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _check_instant(t: float) -> None:
    if not math.isfinite(t):
        raise ValueError(f"schedule times must be finite unix timestamps, got {t!r}")


def _coerce_period(run_every: Period) -> float:
    # bool is an int subclass, but `run_every=True` is always a mistake.
    if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta)):
        raise TypeError(
            "periodic task period must be int or float seconds or a datetime.timedelta, "
            f"not {type(run_every).__name__}"
        )
    try:
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else float(run_every)
    except OverflowError:
        seconds = math.inf
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"periodic task period must be a finite number of seconds > 0, got {run_every!r}")
    return seconds


def check_zone(tz: str | tzinfo | None) -> tzinfo:
    """A time zone from an IANA name ("Europe/Paris") or a tzinfo; None is UTC.

    Raises ValueError naming an unknown zone, TypeError for anything else.
    """
    if tz is None:
        return timezone.utc
    if isinstance(tz, str):
        if tz.upper() == "UTC":
            return timezone.utc
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            # ValueError: a name such as "../x" that is not a valid zone key.
            raise ValueError(f"unknown time zone {tz!r}: use an IANA name such as "
                             f"'Europe/Paris' (is the tz database installed?)") from exc
    if not isinstance(tz, tzinfo):
        raise TypeError(f"tz must be an IANA zone name or a tzinfo, not {type(tz).__name__}")
    if hasattr(tz, "localize"):
        # pytz zones ignore PEP 495 fold, which the DST handling relies on.
        raise TypeError("pytz time zones are not supported; use zoneinfo.ZoneInfo")
    return tz


def check_period(run_every: Period, minimum: float, low_delay_okay: bool) -> float:
    """Validate a periodic task's period and return it in seconds."""
    period = _coerce_period(run_every)
    if period < minimum and not low_delay_okay:
        raise ValueError(
            f"periodic task period {_fmt_seconds(period)}s is below MINIMUM_DELAY "
            f"({_fmt_seconds(minimum)}s); pass low_delay_okay=True to allow it"
        )
    return period


class Every(Schedule):
    """Runs at every multiple of ``period`` seconds since the unix epoch.

    Anchoring at the epoch rather than at registration time means that any
    worker, at any moment, derives the same planned instants.
    """

    __slots__ = ("_period",)

    def __init__(self, run_every: Period) -> None:
        self._period = _coerce_period(run_every)

    @property
    def period(self) -> float:
        return self._period

    def _index_after(self, t: float) -> int:
        """Smallest k with k * period > t."""
        p = self._period
        k = math.floor(t / p) + 1
        # t / p is rounded, so the estimate can be one off in either direction;
        # fixing it against the product we actually return keeps next_after
        # strictly increasing past t and monotonic in t.
        while k * p <= t:
            k += 1
        while (k - 1) * p > t:
            k -= 1
        return k

    def next_after(self, t: float) -> float:
        _check_instant(t)
        return self._index_after(t) * self._period

    def describe(self) -> str:
        return f"every {_fmt_seconds(self._period)}s"

    def __repr__(self) -> str:
        return f"Every({self._period!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Every) and other._period == self._period

    def __hash__(self) -> int:
        return hash((Every, self._period))


_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_WEEKDAY_NAME = r"(?:sun|mon|tue|wed|thu|fri|sat)"
_WEEKDAY_TOKEN = rf"{_WEEKDAY_NAME}(?:-{_WEEKDAY_NAME})?(?:/\d+)?"
_WEEKDAYS_ONLY = re.compile(rf"{_WEEKDAY_TOKEN}(?:,{_WEEKDAY_TOKEN})*", re.IGNORECASE)

# crontab 1.x covers years 1970-2099 and answers None past that; stopping a
# day later leaves room for any UTC offset and keeps datetime in range.
_CRONTAB_END = datetime(2100, 1, 2, tzinfo=timezone.utc).timestamp()


def _seven_fields(expression: str) -> str:
    """Rewrite a 5/6/7-field expression as crontab's "S M H DoM Mon DoW Y" form."""
    fields = expression.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        alias = _ALIASES.get(fields[0].lower())
        if alias is None:
            raise ValueError(f"unknown alias {fields[0]!r}; known: {', '.join(_ALIASES)}")
        fields = alias.split()
    if len(fields) == 5:
        fields = ["0", *fields, "*"]
    elif len(fields) == 6:
        # crontab itself reads six fields as "M H DoM Mon DoW Y"; rpqueue's
        # documented meaning is seconds first ("* * * * * *" = every second),
        # so a year can only be given by writing all seven fields.
        fields = [*fields, "*"]
    elif len(fields) != 7:
        raise ValueError(
            f"expected 5 fields (M H DoM Mon DoW), 6 (S M H DoM Mon DoW) or "
            f"7 (S M H DoM Mon DoW Y), got {len(fields)}"
        )
    # Weekday names are never valid in the day-of-month field, so a name
    # there can only mean the weekday; rpqueue's own documentation has long
    # shown "0 5 tue * *" as "every Tuesday at 05:00".
    if _WEEKDAYS_ONLY.fullmatch(fields[3]) and fields[5] in ("*", "?"):
        fields[3], fields[5] = "*", fields[3]
    # crontab lowercases fields itself; doing it here makes equality ignore case.
    return " ".join(fields).lower()


class Cron(Schedule):
    """Runs whenever the local wall clock in ``tz`` matches ``expression``.

    ``tz=None`` means UTC rather than the host's zone: planned instants must
    not depend on which machine computed them, and Redis ``TIME`` is already
    a UTC-based epoch.  Pass an IANA name ("Europe/Paris") or a
    ``zoneinfo.ZoneInfo`` for local-time jobs; an unknown name is a ValueError.

    Each matching wall-clock time fires exactly once.  When clocks go back,
    a repeated wall time fires only on its first occurrence; when they jump
    forward, a skipped wall time fires at the instant of the jump.
    """

    __slots__ = ("_crontab", "_expression", "_fields", "_tz")

    def __init__(self, expression: str, tz: str | tzinfo | None = None) -> None:
        if not isinstance(expression, str):
            raise TypeError(f"cron expression must be a str, not {type(expression).__name__}")
        self._expression = expression
        self._tz: tzinfo = check_zone(tz)
        try:
            self._fields = _seven_fields(expression)
            self._crontab = CronTab(self._fields)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {expression!r}: {exc}") from exc
        # Catches impossible dates such as "0 0 31 2 *" here rather than as a
        # task that silently never runs.
        if self._next_wall(datetime(1970, 1, 1)) is None:
            raise ValueError(f"invalid cron expression {expression!r}: never matches any time")

    @property
    def expression(self) -> str:
        return self._expression

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def describe(self) -> str:
        return f"cron {self._expression!r} ({self._tz})"

    def __repr__(self) -> str:
        return f"Cron({self._expression!r}, tz={self._tz!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and (other._fields, other._tz) == (self._fields, self._tz)

    def __hash__(self) -> int:
        return hash((Cron, self._fields, self._tz))

    def next_after(self, t: float) -> float:
        _check_instant(t)
        if t >= _CRONTAB_END:
            return math.inf
        # Planned instants are whole seconds, so searching from floor(t) loses
        # nothing, and it avoids crontab's float/microsecond rounding entirely.
        s = math.floor(t)
        wall = self._high_water_wall(s)
        while True:
            nxt = self._next_wall(wall)
            if nxt is None:
                return math.inf
            u = self._first_instant_reaching(nxt)
            # Always true by construction; the loop only guards the "never
            # return <= t" contract against zone data we did not foresee.
            if u > t:
                return float(u)
            wall = nxt

    def _next_wall(self, wall: datetime) -> datetime | None:
        # With a naive datetime and default_utc=True crontab does plain
        # wall-clock arithmetic and returns the first match strictly after it.
        nxt: datetime | None = self._crontab.next(wall, default_utc=True, return_datetime=True)
        return nxt

    def _local(self, u: int) -> datetime:
        return datetime.fromtimestamp(u, self._tz)

    def _transition(self, lo: int, hi: int) -> int:
        """First instant in (lo, hi] whose UTC offset differs from lo's."""
        offset = self._local(lo).utcoffset()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._local(mid).utcoffset() == offset:
                lo = mid
            else:
                hi = mid
        return hi

    def _high_water_wall(self, s: int) -> datetime:
        """Latest wall-clock time shown at or before instant s."""
        local = self._local(s)
        if not local.fold:
            return local.replace(tzinfo=None)
        # s is in the repeated stretch after clocks went back: every wall time
        # up to the one shown just before the change has already had its run.
        first_pass = int(local.replace(fold=0).timestamp())
        change = self._transition(first_pass, s)
        return self._local(change - 1).replace(tzinfo=None)

    def _first_instant_reaching(self, wall: datetime) -> int:
        """First instant at which the wall clock has reached ``wall``."""
        # fold=0 picks the earlier instant of an ambiguous wall time.
        u0 = int(wall.replace(tzinfo=self._tz, fold=0).timestamp())
        if self._local(u0).replace(tzinfo=None) == wall:
            return u0
        # ``wall`` fell in a forward jump; per PEP 495 fold=1 maps it to just
        # before the jump and fold=0 to just after, so the jump lies between.
        u1 = int(wall.replace(tzinfo=self._tz, fold=1).timestamp())
        return self._transition(u1, u0)


def next_run(schedule: Schedule, planned: float | None, now: float, never_skip: bool) -> float:
    """When to run next, after a run planned for ``planned`` is processed at ``now``.

    ``planned=None`` means the task is being registered for the first time.
    With ``never_skip`` the schedule stays anchored to planned times, so after
    an outage every missed run is replayed, each one due immediately.
    Otherwise missed runs are dropped and the next run is the first planned
    time after ``now``.
    """
    if planned is None:
        return schedule.next_after(now)
    if never_skip:
        return schedule.next_after(planned)
    # For Every this deliberately is not `now + period`: `now` differs with
    # each worker's processing latency, so the result would drift run by run
    # and two workers rescheduling the same task would disagree.  The next
    # period multiple is identical wherever it is computed and still at most
    # one period away.  max() keeps a run processed early (a manual execute,
    # a skewed clock) from being given its own slot again.
    return schedule.next_after(max(planned, now))


def missed_runs(schedule: Schedule, planned: float, now: float, *, limit: int = 100_000) -> int:
    """How many planned times lie in (planned, now], capped at ``limit`` for Cron."""
    if now <= planned:
        return 0
    if isinstance(schedule, Every):
        return schedule._index_after(now) - schedule._index_after(planned)
    # Walking cron times one by one is the only general way; the cap bounds
    # the cost of, say, an every-second cron after a long outage.
    count = 0
    t = schedule.next_after(planned)
    while t <= now and count < limit:
        count += 1
        t = schedule.next_after(t)
    return count
