from ledger import note

from rpqueue import task


@task
def book(amount):
    note("ran", tag="book", amount=amount)
