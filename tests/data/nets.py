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


# Modules that cannot train as lrscale trains (each refused at start-up in one line).
class WithDropout(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(nn.Dropout(0.5, deterministic=False)(x))


class WithBatchNorm(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(nn.BatchNorm(use_running_average=False)(x))


class WithCounter(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        calls = self.variable("counter", "calls", lambda: 0)
        calls.value += 1
        return nn.Dense(self.n_out)(x)


class ToNumpy(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        import numpy as np

        return nn.Dense(self.n_out)(np.asarray(x))


class FixedReshape(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(x.reshape(3, -1))


class FirstThree(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(x[:3])


class IntegerOutput(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(x).astype("int32")


class NoParameters(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return x[:, : self.n_out] * 0.0


class NaNOutput(nn.Module):
    n_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(x) * float("nan")
