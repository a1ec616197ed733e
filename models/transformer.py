"""A pre-LayerNorm decoder-only transformer over bytes (model=transformer, task=text).

Learned token and position embeddings, `depth` blocks of causal multi-head attention and an MLP
(each x + f(LayerNorm(x))), a final LayerNorm and logits over the vocabulary: tied to the token
embedding, or a layer of their own. Embeddings start at N(0, 0.02^2), as in GPT-2, so that an
untrained model predicts every byte nearly uniformly (loss ~ ln 256 nats).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lrscale.config import ModelConfig
from models.base import Model

NAME = "transformer"
READS = ("width", "depth", "heads", "mlp_ratio", "tie_embeddings", "activation")
TASK_KINDS = ("language",)
EMBED_INIT = nn.initializers.normal(0.02)


class Block(nn.Module):
    heads: int
    mlp_ratio: int
    activation: str

    @nn.compact
    def __call__(self, x_BxTxW):
        B, T, W = x_BxTxW.shape
        dt = x_BxTxW.dtype
        h = nn.LayerNorm(param_dtype=dt)(x_BxTxW)
        qkv = nn.Dense(3 * W, param_dtype=dt)(h).reshape(B, T, 3, self.heads, W // self.heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        a = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(B, T, W)
        x = x_BxTxW + nn.Dense(W, param_dtype=dt)(a)
        h = nn.LayerNorm(param_dtype=dt)(x)
        h = getattr(nn, self.activation)(nn.Dense(self.mlp_ratio * W, param_dtype=dt)(h))
        return x + nn.Dense(W, param_dtype=dt)(h)


class Transformer(nn.Module):
    vocab: int
    context: int
    width: int
    depth: int
    heads: int
    mlp_ratio: int
    activation: str
    tie_embeddings: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens_BxT):
        T, dt = tokens_BxT.shape[1], self.dtype
        embed = nn.Embed(self.vocab, self.width, embedding_init=EMBED_INIT, param_dtype=dt)
        pos = self.param("position", EMBED_INIT, (self.context, self.width), dt)
        x = embed(tokens_BxT) + pos[:T]
        for _ in range(self.depth):
            x = Block(self.heads, self.mlp_ratio, self.activation)(x)
        x = nn.LayerNorm(param_dtype=dt)(x)
        if self.tie_embeddings:
            return embed.attend(x)
        return nn.Dense(self.vocab, kernel_init=EMBED_INIT, param_dtype=dt)(x)


def counts(cfg: ModelConfig, context: int, vocab: int) -> tuple[int, float, int]:
    """(parameters, forward FLOPs per token, floats per token kept for the backward pass).

    FLOPs: 2 per weight of every matrix product (the block weights, 4 + 2 * mlp_ratio widths
    squared, and the logits' W x vocab) plus attention, whose scores and weighted values take
    2 * T * W each per token and block (XLA forms the whole T x T square, masked).
    """
    W, d, r, T, V = cfg.width, cfg.depth, cfg.mlp_ratio, context, vocab
    block_weights = (4 + 2 * r) * W * W
    block_params = block_weights + (3 + 1 + r + 1) * W + 2 * 2 * W  # biases, two LayerNorms
    n_params = V * W + T * W + d * block_params + 2 * W + (0 if cfg.tie_embeddings else W * V + V)
    flops = d * (2 * block_weights + 4 * T * W) + 2 * W * V
    # per block: input, two LayerNorms, qkv, attention out, projection, the MLP's two hidden
    # layers, and scores and weights per head; then the final LayerNorm, logits and softmax
    kept = d * ((8 + 2 * r) * W + 2 * cfg.heads * T) + W + 2 * V
    return n_params, flops, kept


def build(cfg: ModelConfig, task, dtype, batch_sizes) -> Model:
    """The model per sequence of `context` tokens (the task's features), over the task's
    vocabulary (its outputs). The input is token ids, so no input gradient is formed or
    subtracted."""
    context, vocab = task.n_features, task.n_out

    def net(dtype):
        return Transformer(
            vocab,
            context,
            cfg.width,
            cfg.depth,
            cfg.heads,
            cfg.mlp_ratio,
            cfg.activation,
            cfg.tie_embeddings,
            jnp.dtype(dtype),
        )

    def init(key, dtype):
        return net(dtype).init(key, jnp.zeros((1, context), jnp.int32))

    def apply(params, tokens_BxT):
        dtype = jax.tree.leaves(params)[0].dtype
        return net(dtype).apply(params, tokens_BxT)

    n_params, flops, kept = counts(cfg, context, vocab)
    return Model(init, apply, False, n_params, context * flops, 3 * context * flops, context * kept)
