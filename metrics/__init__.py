"""texbench.metrics."""
