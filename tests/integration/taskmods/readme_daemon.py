# ruff: noqa  (README code, kept as the README has it)
"""The seed README's "Getting started" daemon, verbatim but for where Redis is.

Usage: python readme_daemon.py HOST PORT DB
"""
import sys

host, port, db = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

from mytasks import usertasks1, usertasks2, retries, waiting
import rpqueue

rpqueue.set_redis_connection_settings(host, port, db)
rpqueue.execute_tasks()
