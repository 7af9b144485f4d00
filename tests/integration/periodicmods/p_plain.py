"""A plain task (no schedule), for shutdown tests."""

from periodic_ledger import record

from rpqueue import task


@task(name="plain.note")
def note(tag: str) -> None:
    record("plain.note", tag=tag)
