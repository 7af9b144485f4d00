"""1 s tasks: periodic anchored to planned times, periodic that skips, anchored cron."""

from periodic_ledger import record

from rpqueue import cron_task, periodic_task


@periodic_task(1, never_skip=True, name="pair.anchored")
def anchored() -> None:
    record("pair.anchored")


@periodic_task(1, name="pair.skipping")
def skipping() -> None:
    record("pair.skipping")


@cron_task("* * * * * *", never_skip=True, name="pair.cron_anchored")
def cron_anchored() -> None:
    record("pair.cron_anchored")
