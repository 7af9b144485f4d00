"""A cron task whose only matching year is in the past: it has no next run."""

from periodic_ledger import record

from rpqueue import cron_task, periodic_task


@periodic_task(60, name="exhausted.minutely")
def minutely() -> None:
    record("exhausted.minutely")


@cron_task("0 0 0 1 1 * 2020", name="exhausted.new_year_2020")
def new_year_2020() -> None:
    record("exhausted.new_year_2020")
