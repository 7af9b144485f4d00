"""``python -m rpqueue``: the ``rpqueue`` command."""

import sys

from .cli import main

sys.exit(main())
