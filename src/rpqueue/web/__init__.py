"""``rpqueue dashboard``: a web page over a Redis that rpqueue uses.

Needs the ``web`` extra (Starlette and uvicorn). ``serve`` is what the CLI
calls; ``create_app`` gives the ASGI app to mount or test. The JSON API
behind the page is documented in docs/DASHBOARD.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .serve import ENV_TOKEN, serve

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ENV_TOKEN", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # Imported on first use so that ``serve`` can report a missing extra
    # with an install hint instead of an ImportError at import time.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
