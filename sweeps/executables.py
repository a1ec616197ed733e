"""Compiled sweep programs kept on disk, so that a warm start skips tracing and lowering too.

JAX's persistent cache skips XLA's compile but is keyed by the lowered program, so every start
still traces and lowers it (0.2-0.5 s a program). Here the executable itself is stored, keyed by
everything that determines it: lrscale's own source, the versions of the libraries that write the
program, the devices, the compiler options, the sweep's settings (`lrscale.config.settings`, data
files and corpus hashed in) and the shapes of the call. A custom model's code lives outside
lrscale, so its programs are never stored. Only a program compiled afresh can be stored: one that
JAX took from its persistent cache serialises without its code. So a program the store lacks is
named after its key: JAX's persistent cache keys a program by its name too, so the same program
left there by an earlier lrscale (under another key) does not answer it, and it is compiled
afresh and stored. Where JAX's cache holds it under this very name (the store lost an entry that
JAX kept), it is compiled once more under a name of its own, and stored. Entries are written
whole (a rename); one that fails to load is compiled again, and one unused for KEEP_DAYS is
removed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import pickle
import threading
import time
from pathlib import Path
from typing import NamedTuple

import jax
from jax.experimental import serialize_executable

from lrscale.files import atomic_write
from sweeps import engine

LIBRARIES = ("jax", "jaxlib", "optax", "flax")
KEEP_DAYS = 30
# settings that change what a traced program computes, whether set in code or the environment
JAX_SETTINGS = (
    "jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
    "jax_threefry_partitionable",
)  # fmt: skip
_compile = threading.local()  # this thread's compile took its program from JAX's cache


def _note_cache_hit(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _compile.hit = True


jax.monitoring.register_event_listener(_note_cache_hit)


@functools.cache
def _source_digest() -> str:
    """sha256 of lrscale's program-building code: the lrscale, sweeps, tasks and models packages."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for pkg in ("lrscale", "sweeps", "tasks", "models"):
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


class Store(NamedTuple):
    """Where programs are kept, and the settings of the sweep whose programs they are (its
    identity's, `sweeps.identity`)."""

    folder: Path
    settings: dict


def key(settings: dict, batch_size: int, points, args) -> str | None:
    """The key of the program of the sweep with these settings at batch_size called on args, or
    None where not stored."""
    if settings["model"] == "custom":
        return None
    blob = dict(
        source=_source_digest(),
        versions={p: importlib.metadata.version(p) for p in LIBRARIES},
        devices=[
            (d.platform, d.device_kind, d.id, d.client.platform_version) for d in jax.devices()
        ],
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        jax_settings={name: str(getattr(jax.config, name, None)) for name in JAX_SETTINGS},
        options=engine.compiler_options(),
        # the lrs are the program's input: their range leaves it as it is
        settings={k: v for k, v in settings.items() if k not in ("lr_min", "lr_max")},
        batch_size=batch_size,
        points=[int(p) for p in points],
        args=[
            (str(x.shape), str(x.dtype), str(getattr(x, "sharding", "")))
            for x in jax.tree.leaves(args)
        ],
    )
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def load(folder: Path, k: str):
    """The stored executable of key k, or None."""
    path = folder / f"{k}.bin"
    if not path.exists():
        return None
    try:
        payload, in_tree, out_tree = pickle.loads(path.read_bytes())
        out = serialize_executable.deserialize_and_load(
            payload, in_tree, out_tree, execution_devices=jax.devices()
        )
        os.utime(path)  # in use: kept
        return out
    except Exception:  # an entry from an incompatible build or a damaged file: compile again
        return None


def fresh(lowered):
    """The executable of lowered, and whether XLA compiled it (rather than JAX's cache)."""
    _compile.hit = False
    compiled = engine.compile_program(lowered)
    return compiled, not _compile.hit


def save(folder: Path, k: str, compiled) -> None:
    """Store compiled under key k, and remove the entries unused for KEEP_DAYS."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        payload = pickle.dumps(serialize_executable.serialize(compiled))
        atomic_write(folder / f"{k}.bin", lambda tmp: tmp.write_bytes(payload))
        old = time.time() - KEEP_DAYS * 86400
        for f in folder.glob("*.bin"):
            if f.stat().st_mtime < old:
                f.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only or full cache only costs the next start its compile


def compiled(store: Store | None, batch_size: int, points, program, args):
    """The executable of program()(*args), `program(tag="")` building the jitted program (named
    after its tag): from the store, or compiled (and stored)."""
    k = key(store.settings, batch_size, points, args) if store is not None else None
    if k is None:
        return engine.compile_program(program().lower(*args))
    folder = store.folder
    out = load(folder, k)
    if out is not None:
        return out
    for tag in (k[:16], f"{k[:16]}_{os.urandom(4).hex()}"):
        out, new = fresh(program(tag=tag).lower(*args))
        if new:
            save(folder, k, out)
            break
    return out
