"""A 1 s and a 0.5 s periodic task, and two cron tasks with a seconds field."""

from periodic_ledger import record

from rpqueue import cron_task, periodic_task


@periodic_task(1, name="steady.every_second")
def every_second() -> None:
    record("steady.every_second")


@cron_task("* * * * * *", name="steady.cron_every_second")
def cron_every_second() -> None:
    record("steady.cron_every_second")


# Seconds field plus month and day-of-week names: matches every even second.
@cron_task("*/2 * * * jan-dec mon-sun", name="steady.cron_even_named")
def cron_even_named() -> None:
    record("steady.cron_even_named")


# Below MINIMUM_DELAY, allowed explicitly.
@periodic_task(0.5, low_delay_okay=True, name="steady.half_second")
def half_second() -> None:
    record("steady.half_second")
