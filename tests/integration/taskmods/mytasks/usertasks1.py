# ruff: noqa  (README code, kept as the README has it)
# Verbatim from the seed README, section "Example uses".
from rpqueue import task


@task
def echo_to_stdout(message):
    print(message)
