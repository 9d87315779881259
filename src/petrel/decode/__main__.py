"""``python -m petrel.decode``: the same as ``petrel decode``."""

from __future__ import annotations

import sys

from .cli import decode_main

if __name__ == "__main__":
    sys.exit(decode_main())
