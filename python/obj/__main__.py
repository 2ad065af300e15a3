"""``python -m obj``: see :mod:`obj.cli`."""

from .cli import main

raise SystemExit(main())
