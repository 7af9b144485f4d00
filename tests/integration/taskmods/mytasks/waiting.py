# ruff: noqa  (README code, kept as the README has it)
# Verbatim from the seed README, sections "Waiting for task execution" and
# "Automatically storing results of tasks" ("# do something" needs a body).
from rpqueue import task


@task
def my_task(args):
    # do something
    pass

@task(save_results=30)
def task_with_results():
    return 5
