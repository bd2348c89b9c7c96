"""texbench.reports."""
