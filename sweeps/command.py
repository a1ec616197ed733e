"""The sweep command's line as text: shorthands, quoting, the command that resumes a run, and
Hydra's errors as one line with the hint that fixes them."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from lrscale.config import no_such_key


def plot_shorthand(argv: list[str]) -> list[str]:
    """`plot=false` (true, a multirun's `plot=true,false`, `+plot=...`) is short for
    `plot.enabled=...`; `plot={...}` sets the whole node and stays as it is."""
    return [re.sub(r"^(\+{0,2})plot=(?!\{)", r"\1plot.enabled=", a) for a in argv]


def normalised(argv: list[str]) -> list[str]:
    """argv as Hydra reads it: the plot shorthand expanded, and -m (--multirun) first, where
    Hydra's own parser needs it whatever its place on the line."""
    flags = [a for a in argv if a in ("-m", "--multirun")]
    return flags + plot_shorthand([a for a in argv if a not in flags])


def renamed_option(argv: list[str]) -> str | None:
    """Why an override that sets a group's name (`optimizer.name=adam`) cannot be used: the
    other keys keep the values of the option chosen (SGD's momentum 0, say), so the sweep would
    run one optimizer under another's name; the group itself is chosen with `optimizer=adam`."""
    for a in argv:
        m = re.fullmatch(r"\+{0,2}(task|model|optimizer)\.name=(.*)", a)
        if m:
            group, value = m.groups()
            return (
                f"{group}.name: choose the {group} with {group}={value}, not {group}.name={value} "
                f"(which keeps the keys and values of the {group} it renames)"
            )
    return None


def dir_override(key: str, path: str) -> str:
    """`key=path` as one shell word that Hydra parses back to path (spaces, non-ASCII, quotes)."""
    if re.fullmatch(r"[A-Za-z0-9_\-+./:%@~]+", path):
        return f"{key}={path}"
    q = "'" if "'" not in path else '"'
    escaped = path.replace(q, "\\" + q)
    word = f"{key}={q}{escaped}{q}"  # Hydra's quoted value
    return f'"{word}"' if not re.search(r'["$`\\!]', word) else shlex.quote(word)


def resume_command(hc, out_dir: Path) -> str:
    """The shell command that resumes this run, or in a multirun every job of it."""
    if hc.mode.name == "MULTIRUN":
        dirs = ("hydra.sweep.dir=", "hydra.run.dir=")
        args = [shlex.quote(a) for a in sys.argv[1:] if not a.startswith(dirs)]
        args += [dir_override("hydra.sweep.dir", str(Path(hc.sweep.dir).absolute()))]
    else:
        args = [*map(shlex.quote, hc.overrides.task), dir_override("hydra.run.dir", str(out_dir))]
    return f"python -m sweeps.run {' '.join(args)}"


def _unparsable(argv: list[str]) -> str | None:
    """The first override of argv that Hydra cannot read as one key=value, with the fix."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    multirun = "-m" in argv or "--multirun" in argv
    for a in argv:
        if a.startswith("-"):
            continue
        key, eq, value = a.partition("=")
        try:
            (o,) = parser.parse_overrides([a])
            if multirun or not o.is_sweep_override():
                continue
            return (
                f"{key}: Hydra reads the commas of {value!r} as a multirun's values: quote it "
                f"as one value, e.g. {dir_override(key, value)}"
            )
        except Exception:  # noqa: BLE001 - Hydra's parse errors have several kinds
            pass
        if not eq:
            return (
                f"overrides: {a!r} is not key=value: the shell split a value at a space; quote "
                f"it whole, e.g. {dir_override('task.path', 'my ' + a)}"
            )
        if value.startswith(("[", "{")):
            return (
                f"{key}: Hydra cannot read {value!r}: a list is written [1,4,16], a mapping {{a:1}}"
            )
        return (
            f"{key}: Hydra cannot read {value!r} as one value (a space, bracket, quote, '=' or "
            f"non-ASCII letter in it): quote it, e.g. {dir_override(key, value)}"
        )
    return None


def hydra_error(e: Exception, argv: list[str]) -> str:
    """Hydra's error for a bad override or option, in one line: `<key>: <what is wrong>` and,
    where a user can fix it by typing something else, what to type."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        group, _, option = e.missing_cfg_file.rpartition("/")
        options = ", ".join(e.options or [])
        return f"{group or 'config'}: no option {option!r} (options: {options})"
    text = " ".join(str(e).split())
    if isinstance(e, OverrideParseException) or "Ambiguous value" in text:
        why = _unparsable(argv)
        if why:
            return why
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    key = getattr(cause, "full_key", None) or "overrides"
    first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    if "not in struct" in first or re.search(r"Key '.*' not in '", first):
        parent, _, name = key.rpartition(".")
        value = next((a.split("=", 1)[1] for a in argv if a.startswith(key + "=")), "...")
        if parent == "model.kwargs":
            return f"{key}: model.kwargs holds no key {name!r} yet: add it with a +, +{key}={value}"
        tasks = [a.split("=", 1)[1] for a in argv if a.startswith("task=")]
        return no_such_key(key, tasks[-1] if tasks else "regression")  # the last one counts
    return f"{key}: {first}"
