"""Tasks for RQ (functions are referenced by import path)."""
import benchlib


def noop(i):
    benchlib.task_done(i)


def stamp():
    benchlib.task_stamp()
