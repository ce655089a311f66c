"""`python -m revisit ...`: the same entry point as the `revisit` script."""

from revisit.cli import main

raise SystemExit(main())
