# ruff: noqa  (README code, kept as the README has it)
# tasks.py, as in the seed README's "Getting started"
from tasks import accounting, cleanup
# any other imports or configuration necessary, put them here
