"""texbench.synthesizers."""
