"""`python -m stepgraph.cli`: the same as the `stepgraph` script."""

from . import main

raise SystemExit(main())
