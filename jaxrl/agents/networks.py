"""Flax modules shared by all agents: MLPs, critic ensembles and actors.

Critic ensembles are one module whose parameters carry a leading ensemble axis (`nn.vmap`), so K
critics cost one batched matmul per layer instead of K separate networks.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    out_dim: int | None = None
    layer_norm: bool = False
    bias_init: float = 0.0  # RIQL/EDAC init critic biases at 0.1
    activation: Callable = nn.relu
    out_init_scale: float = 0.0  # > 0: the output layer's weights and bias from U(-scale, scale) (EDAC's init)

    @nn.compact
    def __call__(self, x):
        bias_init = nn.initializers.constant(self.bias_init)
        for width in self.hidden_dims:
            x = nn.Dense(width, bias_init=bias_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = self.activation(x)
        if self.out_dim is not None:
            if self.out_init_scale > 0:
                symmetric = symmetric_uniform(self.out_init_scale)
                x = nn.Dense(self.out_dim, kernel_init=symmetric, bias_init=symmetric)(x)
            else:
                x = nn.Dense(self.out_dim, bias_init=bias_init)(x)
        return x


def symmetric_uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def stride2_patches(x) -> jax.Array:
    """The 3x3 neighbourhoods [..., H/2, W/2, 9 C] that a stride-2 3x3 "SAME" convolution reads from images
    [..., H, W, C] of even size (XLA's SAME pads one row and column after, none before)."""
    h, w = x.shape[-3] // 2, x.shape[-2] // 2
    padded = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(0, 1), (0, 1), (0, 0)])
    return jnp.concatenate([padded[..., i : i + 2 * h : 2, j : j + 2 * w : 2, :] for i in range(3) for j in range(3)], axis=-1)


class ConvEncoder(nn.Module):
    """A small CNN for PathWorld's 32/64 px images [B, H, W, C] -> [B, out_dim]: stride-2 3x3 convolutions
    (each halves the image), then a dense layer on the flattened features.

    Each convolution is written as its patches times a dense kernel (the same function as `nn.Conv` with
    strides 2 and SAME padding, kernel reshaped [9 C, width]): XLA's CPU backend runs a convolution's
    weight gradient inside a `scan` of updates about 40x slower than this (140 vs 3.6 ms an update at batch
    64, 32 px), and vmapped over seeds a convolution becomes a grouped one, slow on CPU too.
    With `coordinates`, two channels holding each pixel's x and y in [0, 1] (CoordConv, Liu et al. 2018) are
    appended first, so features can say where in the image something is (a path, the agent).
    The first `keypoint_layers` layers' feature maps also go through a spatial softmax
    (Levine et al. 2016): per channel, the expected x, y under a softmax over pixels, so a channel that
    fires on one colour reports where that colour is, finer than the last layer's 4 x 4 grid can."""

    channels: Sequence[int] = (16, 32, 32)
    out_dim: int = 128
    coordinates: bool = True
    keypoint_layers: int = 2

    @nn.compact
    def __call__(self, images):
        x = images
        if self.coordinates:
            grid = jnp.broadcast_to(pixel_centres(*images.shape[-3:-1]), (*images.shape[:-1], 2))
            x = jnp.concatenate([images, grid], axis=-1)
        points = []
        for layer, width in enumerate(self.channels):
            x = nn.relu(nn.Dense(width)(stride2_patches(x)))
            if layer < self.keypoint_layers:
                scale = self.param(f"keypoint_scale_{layer}", nn.initializers.ones, (width,))
                points.append(spatial_softmax(x * scale))
        features = nn.relu(nn.Dense(self.out_dim)(x.reshape(*x.shape[:-3], -1)))
        return jnp.concatenate([features, *points], axis=-1)


def pixel_centres(h: int, w: int) -> jax.Array:
    """[h, w, 2]: each pixel centre's (x, y) in [0, 1], row 0 at the top (y = 1), as images are drawn."""
    ys, xs = jnp.meshgrid(1.0 - (jnp.arange(h) + 0.5) / h, (jnp.arange(w) + 0.5) / w, indexing="ij")
    return jnp.stack([xs, ys], axis=-1)


def spatial_softmax(x) -> jax.Array:
    """[..., 2 C]: per channel of feature maps [..., H, W, C], the expected (x, y) in [0, 1] (y up) of a
    softmax over the H x W pixels (x of every channel, then y of every channel)."""
    h, w, c = x.shape[-3:]
    weights = jax.nn.softmax(x.reshape(*x.shape[:-3], h * w, c), axis=-2)
    expected = jnp.einsum("...pc,pk->...kc", weights, pixel_centres(h, w).reshape(h * w, 2))
    return expected.reshape(*expected.shape[:-2], 2 * c)


class Critic(nn.Module):
    """Q(s, a) -> scalar."""

    hidden_dims: Sequence[int]
    layer_norm: bool = False
    bias_init: float = 0.0
    out_init_scale: float = 0.0

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        return MLP(self.hidden_dims, 1, self.layer_norm, self.bias_init, out_init_scale=self.out_init_scale)(x)[..., 0]


class CriticEnsemble(nn.Module):
    """K independent critics evaluated together: returns Q values of shape [K, ...]."""

    hidden_dims: Sequence[int]
    num_critics: int = 2
    layer_norm: bool = False
    bias_init: float = 0.0
    out_init_scale: float = 0.0

    @nn.compact
    def __call__(self, obs, action):
        ensemble = nn.vmap(
            Critic,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden_dims, self.layer_norm, self.bias_init, self.out_init_scale)(obs, action)


class ValueNet(nn.Module):
    """V(s) -> scalar."""

    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden_dims, 1)(obs)[..., 0]


class Discriminator(nn.Module):
    """Real-vs-simulated classifier of its concatenated inputs: 2 logits bounded to [-2, 2] (2 tanh, as
    H2O's reference, so no probability saturates)."""

    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, *inputs):
        return 2.0 * jnp.tanh(MLP(self.hidden_dims, 2)(jnp.concatenate(inputs, axis=-1)))


class TanhGaussianActor(nn.Module):
    """State-dependent Gaussian over pre-tanh actions (SAC): returns (mean, log_std)."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        h = MLP(self.hidden_dims)(obs)
        mean = nn.Dense(self.action_dim)(h)
        log_std = jnp.clip(nn.Dense(self.action_dim)(h), LOG_STD_MIN, LOG_STD_MAX)
        return mean, log_std


class GaussianActor(nn.Module):
    """Gaussian with tanh-bounded mean and state-independent std, as in IQL: returns (mean, log_std)."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.hidden_dims, self.action_dim)(obs))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        log_std = jnp.broadcast_to(jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX), mean.shape)
        return mean, log_std


class DeterministicActor(nn.Module):
    """a = tanh(MLP(s))."""

    hidden_dims: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden_dims, self.action_dim)(obs))


def gaussian_log_prob(x, mean, log_std):
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def sample_tanh_gaussian(key, mean, log_std):
    """Reparameterised sample a = tanh(u), u ~ N(mean, std), with its log density."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    # log(1 - tanh(u)^2) written stably as 2 (log 2 - u - softplus(-2u)).
    log_det = jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    return jnp.tanh(u), gaussian_log_prob(u, mean, log_std) - log_det
