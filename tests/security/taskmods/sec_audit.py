"""sec_tasks under a Python audit hook (``--module=sec_audit``).

Once the worker serves, the hook prints one line ``AUDIT <event> <detail>``
to stderr for every event that would mean a message made the worker run
code it was not meant to: starting programs, unpickling, unmarshalling,
compiling or executing code, importing a module by name.
"""

from __future__ import annotations

import sys
from typing import Any

from sec_tasks import *  # noqa: F403

WATCHED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
           "pickle.find_class", "marshal.load", "marshal.loads", "exec", "compile", "import",
           "builtins.input", "ctypes.dlopen", "os.fork")


def _importing() -> bool:
    """Loading a module's code (marshal.loads of its .pyc, exec of its body) is
    part of an import, which is reported (and judged) as the import event."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("marshal.loads", "marshal.load", "exec", "compile") and _importing():
        return
    if event in WATCHED or event.startswith(("os.exec", "os.spawn")):
        try:
            detail = repr(args[0])[:120] if args else ""
        except Exception:
            detail = "?"
        sys.stderr.write(f"AUDIT {event} {detail}\n")


sys.addaudithook(_hook)
