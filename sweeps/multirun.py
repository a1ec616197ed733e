"""A multirun's jobs, each composed and checked before the first one starts: a bad value in the
third job must not leave two jobs trained and a half-made sweep directory behind."""

from __future__ import annotations

# Hydra options after which this check does not know the configs: Hydra composes and says.
OTHER_CONFIGS = ("-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name")


def jobs(argv: list[str]) -> list[list[str]] | None:
    """The overrides of each job of a multirun command line (the basic sweeper's product of the
    values), or None where this check cannot tell them (other configs or another sweeper)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.split("=")[0] in OTHER_CONFIGS for a in argv) or any(
        a.startswith(("hydra/sweeper", "hydra.sweeper")) for a in argv
    ):
        return None
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        (batch,) = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # noqa: BLE001 - a bad override is Hydra's to report
        return None
    return [list(job) for job in batch]


def check(argv: list[str]) -> str | None:
    """Why a job of the multirun on argv cannot run (its values, its composition, or the data
    files of a file task), naming the job; None when every job is fine."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lrscale.checks import validate
    from lrscale.config import ConfigError
    from sweeps.command import hydra_error
    from sweeps.compose import compose

    todo = jobs(argv)
    if not todo or len(todo) < 2:
        return None
    common = set.intersection(*map(set, todo))
    for i, job in enumerate(todo):
        mine = [o for o in job if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
        try:
            cfg = validate(compose(mine))
            if cfg.task.name == "file":  # its files are read now: a bad one stops no job midway
                from tasks import files

                files.build(cfg)
        except ConfigError as e:
            why = str(e)
        except (HydraException, OmegaConfBaseException) as e:
            why = hydra_error(e, mine)
        else:
            continue
        varied = " ".join(o for o in job if o not in common)
        return f"{why} (job {i} of {len(todo)}: {varied}); no job was run"
    return None
