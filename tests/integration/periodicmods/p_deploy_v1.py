"""Release 1 of a deployed module (see p_deploy_v2 for release 2)."""

from periodic_ledger import record

from rpqueue import periodic_task


@periodic_task(1, name="deploy.keep")
def keep() -> None:
    record("deploy.keep")


# Removed in release 2.
@periodic_task(1, name="deploy.drop")
def drop() -> None:
    record("deploy.drop")


# Every second in release 1, every 3 s in release 2.
@periodic_task(1, name="deploy.slower")
def slower() -> None:
    record("deploy.slower")


# Once a day in release 1, every second in release 2.
@periodic_task(86400, name="deploy.faster")
def faster() -> None:
    record("deploy.faster")
