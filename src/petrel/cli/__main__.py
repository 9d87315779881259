"""``python -m petrel.cli``."""

from . import main

raise SystemExit(main())
