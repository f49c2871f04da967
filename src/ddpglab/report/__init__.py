"""Reports derived from the results store: learning curves and console summaries."""
