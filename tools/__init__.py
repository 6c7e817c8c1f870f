"""Command-line tools of edgecnn (console script `edgecnn`)."""
