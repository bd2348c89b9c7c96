"""texbench.datasets."""
