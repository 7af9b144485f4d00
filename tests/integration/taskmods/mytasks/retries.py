# ruff: noqa  (README code, kept as the README has it)
# Verbatim from the seed README, section "Retries" (Python 3 print).
from rpqueue import task


@task(attempts=3)
def fail_until_zero(value, **kwargs):
    try:
        if value != 0:
            value -= 1
            raise Exception
    except:
        fail_until_zero.retry(value, **kwargs)
    else:
        print("succeeded")
