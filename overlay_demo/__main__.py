"""``python -m overlay_demo``: the same as ``overlay-demo``."""

from overlay_demo.cli import main

raise SystemExit(main())
