"""Byte-level next-token prediction on a corpus (task=text): vocabulary 256, no tokenizer.

The corpus's last test_fraction is held out. An example is a window of context + 1 bytes: the
model reads the first `context` and predicts each next byte. A minibatch is B windows at random
offsets of the training split, drawn from the seed's data stream at each step, so every learning
rate of a seed reads the same windows. The held-out windows tile the tail evenly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrscale.config import ConfigError
from tasks import corpus
from tasks.base import SeedData, Task

NAME = "text"

VOCAB = 256


def windows(text: np.ndarray, context: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to n windows (inputs, next bytes) tiling `text` at evenly spaced offsets, no overlap."""
    fit = (len(text) - 1) // context
    starts = np.unique(np.linspace(0, fit - 1, min(n, fit)).round().astype(np.int64)) * context
    idx = starts[:, None] + np.arange(context + 1)
    w = text[idx].astype(np.int32)
    return w[:, :-1], w[:, 1:]


def build(cfg) -> Task:
    t, max_batch = cfg.task, max(cfg.sweep.batch_sizes)
    try:
        c = corpus.load(t.path)
    except corpus.CorpusError as e:
        raise ConfigError(str(e)) from None
    text = np.frombuffer(c.data, np.uint8)
    n_eval = int(round(t.test_fraction * len(text)))
    train, tail = text[: len(text) - n_eval], text[len(text) - n_eval :]
    T = t.context
    need = T * max_batch + 1  # the largest batch's windows without overlap, and one more byte
    if len(train) < need or len(tail) < T + 1:
        raise ConfigError(
            f"task.path: {c.name} has {c.size:,} bytes, too few: task.context={T} and the largest "
            f"batch size {max_batch} need {need:,} training bytes plus a held-out "
            f"task.test_fraction={t.test_fraction} of the corpus of at least {T + 1} bytes "
            f"(here {len(train):,} and {len(tail):,})"
        )
    x_eval, y_eval = windows(tail, T, t.eval_windows)

    def seed_data(data, keys, dtype):
        corpus_N = data["train"]

        def sample(key, n):
            starts = jax.random.randint(key, (n,), 0, corpus_N.shape[0] - T)
            w = corpus_N[starts[:, None] + jnp.arange(T + 1)].astype(jnp.int32)
            return w[:, :-1], w[:, 1:]

        return SeedData(None, sample, (data["x_eval"], data["y_eval"]), None)

    return Task(
        name="text",
        kind="language",
        loss="cross_entropy",
        n_out=VOCAB,
        n_features=T,
        sequence=False,
        n_train=None,  # windows at random offsets: no epochs
        data={"train": train, "x_eval": x_eval, "y_eval": y_eval},
        seed_data=seed_data,
        columns={
            "task_kind": "language",
            "loss": "cross_entropy",
            "n_features": T,
            "n_outputs": VOCAB,
            "train_size": len(train),  # bytes (tokens) of the training split
            "eval_size": len(x_eval),  # held-out windows
            "tokens_per_example": T,  # predicted bytes per window
        },
        # the corpus's bytes, whether a file or the standard library (another Python, other bytes)
        identity={
            "task_corpus": c.name,
            "task_corpus_bytes": c.size,
            "task_corpus_sha256": c.sha256,
        },
    )
