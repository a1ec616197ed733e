"""A user's module written to equal `model=mlp model.depth=1` (the custom-model tests train it).

Same layers, names, dtypes and activation as models.MLP with one hidden layer, so a sweep of
`model=custom model.target=tests.data.mlp_net.OneHidden` must reproduce the `model=mlp` sweep.
"""

import flax.linen as nn


class OneHidden(nn.Module):
    n_out: int
    width: int = 16

    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(self.width, param_dtype=x.dtype)(x))
        return nn.Dense(self.n_out, param_dtype=x.dtype)(h)
