"""`python -m ftui ...` is the same as the `ftui` console script."""

from ftui.cli import main

raise SystemExit(main())
