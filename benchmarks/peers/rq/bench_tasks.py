"""Tasks for RQ (functions are referenced by import path)."""
import benchlib


def noop():
    benchlib.task_done()


def stamp():
    benchlib.task_stamp()
