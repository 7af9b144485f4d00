"""Release 2 of p_deploy_v1: 'deploy.drop' removed, two periods changed."""

from periodic_ledger import record

from rpqueue import periodic_task


@periodic_task(1, name="deploy.keep")
def keep() -> None:
    record("deploy.keep")


@periodic_task(3, name="deploy.slower")
def slower() -> None:
    record("deploy.slower")


@periodic_task(1, name="deploy.faster")
def faster() -> None:
    record("deploy.faster")
