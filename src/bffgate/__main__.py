"""``python -m bffgate``: the same as the ``bffgate`` command."""

from bffgate.cli import main

raise SystemExit(main())
