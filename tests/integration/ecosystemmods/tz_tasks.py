"""A cron task in a named zone (test_cron_zone_listing.py)."""

from __future__ import annotations

from rpqueue import cron_task


@cron_task("0 5 * * *", tz="Europe/Paris", queue="tzq")
def paris_morning() -> None:
    """Never due during a test: only its schedule is looked at."""
