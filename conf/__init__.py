"""lrscale's Hydra configs (a package, so that they install with lrscale: pkg://sweeps.conf)."""
