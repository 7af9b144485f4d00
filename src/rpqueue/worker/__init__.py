"""Worker processes: the loop that takes and runs tasks, processes x threads."""

from .process import execute_tasks

__all__ = ["execute_tasks"]
