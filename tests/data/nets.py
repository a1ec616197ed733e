"""A user's own flax module, as the README's example writes one (used by the custom-model tests)."""

import flax.linen as nn


class TwoLayer(nn.Module):
    n_out: int
    hidden: int = 32

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(nn.tanh(nn.Dense(self.hidden)(x)))


class WrongShape(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out + 1)(x)


NotAModule = dict
