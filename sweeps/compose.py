"""The typed config of a list of overrides, composed from the shipped configs (pkg://sweeps.conf)
as the sweep command composes them: for tests, the benchmark and studies that build sweeps."""

from __future__ import annotations

from lrscale.config import Config, register, to_config


def compose(overrides=()) -> Config:
    """conf/config.yaml with the overrides applied, as the typed Config (not yet validated)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register()
    with initialize_config_module(config_module="sweeps.conf", version_base="1.3"):
        return to_config(hydra_compose("config", overrides=list(overrides)))
