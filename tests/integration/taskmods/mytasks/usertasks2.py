# ruff: noqa  (README code, kept as the README has it)
# Verbatim from the seed README, section "Example uses" (periodic_task).
from rpqueue import periodic_task


@periodic_task(25, queue="low")
def function1():
    # Will be executed every 25 seconds from within the 'low' queue.
    pass
