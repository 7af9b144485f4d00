"""Tasks for `rpqueue schedule`: a periodic task, a cron task, another queue."""

from periodic_ledger import record

from rpqueue import cron_task, periodic_task


@periodic_task(60, name="sched.minutely")
def minutely() -> None:
    record("sched.minutely")


@cron_task("0 5 tue * *", queue="low", name="sched.tuesdays")
def tuesdays() -> None:
    record("sched.tuesdays")
