"""Decision Transformer (Chen et al. 2021, arXiv 2106.01345).

A causal GPT over the interleaved tokens (R_t, s_t, a_t) of trajectory windows of K steps: R_t is the
undiscounted return-to-go, and a learned embedding of the timestep within the episode is added to all
three tokens of a step. The action a_t is predicted (tanh) from the hidden state of the s_t token and
fitted by MSE, masked by padding. At evaluation the model is conditioned on a target return that is
decremented by the rewards received.

Units. `target_return` is in raw environment units (as the rewards evaluation sees), and returns-to-go
are multiplied by `reward_scale` before they enter the model. The trainer may have rescaled the
dataset's rewards (`normalize_rewards`) after `adapt_to_dataset` and before `training_data`; to keep
training and evaluation in the same units, `adapt_to_dataset` records the raw rewards' magnitude and
`training_data` undoes any rescaling it finds, so returns-to-go are always built from raw rewards.

Windows are left-aligned: the valid steps come first and padding follows the episode's end. With
causal attention, the prediction at a valid step never sees the padding, and evaluation fills its
context the same way (the current step at position min(t, K-1)).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl.agents.base import Agent, ConfigError, hyperparameter, positive, static
from jaxrl.agents.optim import Trainable

_init = nn.initializers.normal(0.02)  # GPT-2's initialisation


@struct.dataclass
class DTBatch:
    """K-step windows; `mask` is 1 on steps of the episode and 0 on the padding after its end."""

    returns_to_go: jax.Array  # [B, K], already multiplied by reward_scale
    observations: jax.Array  # [B, K, obs_dim]
    actions: jax.Array  # [B, K, action_dim]
    timesteps: jax.Array  # [B, K] int32
    mask: jax.Array  # [B, K] float32


@struct.dataclass
class TrajectoryData:
    """Per-row arrays of the dataset that window sampling needs (host-built, then on device)."""

    observations: jax.Array  # [N, obs_dim]
    actions: jax.Array  # [N, action_dim]
    returns_to_go: jax.Array  # [N] raw units: sum of this and the remaining rewards of the episode
    timesteps: jax.Array  # [N] int32, step within the episode
    episode_end: jax.Array  # [N] int32, index of the episode's last row


@struct.dataclass
class DTCarry:
    """The last K steps of every evaluation episode (leading axis: environments)."""

    returns_to_go: jax.Array  # [B, K], scaled
    observations: jax.Array  # [B, K, obs_dim]
    actions: jax.Array  # [B, K, action_dim]
    timesteps: jax.Array  # [B, K] int32
    target: jax.Array  # [B] scaled return-to-go of the next step
    step: jax.Array  # [B] int32 steps taken so far


@struct.dataclass
class DTState:
    model: Trainable
    step: jax.Array


class CausalSelfAttention(nn.Module):
    num_heads: int
    attention_dropout: float
    residual_dropout: float

    @nn.compact
    def __call__(self, x, mask, deterministic: bool, lora=None):
        """`lora`: None, or {"q": (A, B), "v": (A, B)} per batch row ([B, d, r], [B, r, d]) with "scale":
        the query and value projections become W x + scale * x A B (L2M's modulation)."""
        batch, length, dim = x.shape
        head_dim = dim // self.num_heads
        q, k, v = jnp.split(nn.Dense(3 * dim, kernel_init=_init)(x), 3, axis=-1)
        if lora is not None:
            q = q + lora["scale"] * low_rank(x, *lora["q"])
            v = v + lora["scale"] * low_rank(x, *lora["v"])
        q, k, v = (t.reshape(batch, length, self.num_heads, head_dim) for t in (q, k, v))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)
        logits = jnp.where(mask[:, None], logits, jnp.finfo(logits.dtype).min)
        weights = nn.Dropout(self.attention_dropout)(jax.nn.softmax(logits, axis=-1), deterministic=deterministic)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, dim)
        return nn.Dropout(self.residual_dropout)(nn.Dense(dim, kernel_init=_init)(out), deterministic=deterministic)


def low_rank(x, a, b):
    """x A B per batch row: x [B, T, n], A [B, n, r], B [B, r, m]."""
    return jnp.einsum("btn,bnr,brm->btm", x, a, b)


class Block(nn.Module):
    """GPT-2 block: pre-LayerNorm attention and MLP, each added to the residual stream."""

    num_heads: int
    attention_dropout: float
    residual_dropout: float

    @nn.compact
    def __call__(self, x, mask, deterministic: bool, lora=None):
        """`lora` as `CausalSelfAttention`'s, plus "ff": (A, B) on the MLP's 4d pre-activation (the reference's
        place for it: h += scale * h A B)."""
        dim = x.shape[-1]
        x = x + CausalSelfAttention(self.num_heads, self.attention_dropout, self.residual_dropout)(
            nn.LayerNorm()(x), mask, deterministic, lora
        )
        h = nn.Dense(4 * dim, kernel_init=_init)(nn.LayerNorm()(x))
        if lora is not None:
            h = h + lora["scale"] * low_rank(h, *lora["ff"])
        h = nn.gelu(h)
        return x + nn.Dropout(self.residual_dropout)(nn.Dense(dim, kernel_init=_init)(h), deterministic=deterministic)


@struct.dataclass
class Modulation:
    """What a modulation pool adds to the DT, per batch row, without a second copy of the transformer:
    LoRA deltas for every layer (`lora_a` / `lora_b`: {"q", "v", "ff"} -> [B, layers, n, r] / [B, layers,
    r, m]) and/or prompt tokens prepended to the sequence (`prompt` [B, length, d]). None: unused."""

    lora_a: dict | None = None
    lora_b: dict | None = None
    prompt: jax.Array | None = None
    scale: float = 2.0  # LoRA's alpha / rank, alpha = 2 rank as the L2M reference

    def layer(self, i: int):
        if self.lora_a is None:
            return None
        return {"scale": self.scale, **{m: (self.lora_a[m][:, i], self.lora_b[m][:, i]) for m in self.lora_a}}


class DecisionTransformerNet(nn.Module):
    action_dim: int
    embedding_dim: int
    num_layers: int
    num_heads: int
    max_timestep: int
    embedding_dropout: float
    attention_dropout: float
    residual_dropout: float

    def setup(self):
        self.time_embedding = nn.Embed(self.max_timestep, self.embedding_dim, embedding_init=_init)
        self.return_embedding = nn.Dense(self.embedding_dim)
        self.state_embedding = nn.Dense(self.embedding_dim)
        self.action_embedding = nn.Dense(self.embedding_dim)
        self.embedding_norm = nn.LayerNorm()
        self.embedding_drop = nn.Dropout(self.embedding_dropout)
        self.blocks = [Block(self.num_heads, self.attention_dropout, self.residual_dropout) for _ in range(self.num_layers)]
        self.final_norm = nn.LayerNorm()
        self.action_head = nn.Dense(self.action_dim)

    def _time(self, timesteps):
        return self.time_embedding(jnp.clip(timesteps, 0, self.max_timestep - 1))

    def state_tokens(self, observations, timesteps):
        """The embedded s_t tokens [B, K, d] the transformer reads (L2M's retrieval query averages them)."""
        return self.embedding_norm(self.state_embedding(observations) + self._time(timesteps))

    def __call__(self, returns_to_go, observations, actions, timesteps, mask, deterministic: bool = True, modulation=None):
        """Inputs [B, K, ...] with `mask` [B, K] marking valid steps; returns actions [B, K, action_dim]."""
        batch, context = returns_to_go.shape
        time = self._time(timesteps)
        tokens = jnp.stack(
            [
                self.return_embedding(returns_to_go[..., None]) + time,
                self.state_embedding(observations) + time,
                self.action_embedding(actions) + time,
            ],
            axis=2,
        ).reshape(batch, 3 * context, self.embedding_dim)  # (R_1, s_1, a_1, R_2, s_2, a_2, ...)
        x = self.embedding_drop(self.embedding_norm(tokens), deterministic=deterministic)
        valid = jnp.repeat(mask.astype(bool), 3, axis=1)
        prompt = None if modulation is None else modulation.prompt
        if prompt is not None:  # prompt tokens first: every token sees them, they see each other causally
            x = jnp.concatenate([prompt.astype(x.dtype), x], axis=1)
            valid = jnp.concatenate([jnp.ones(prompt.shape[:2], bool), valid], axis=1)
        length = x.shape[1]
        attention_mask = jnp.tril(jnp.ones((length, length), bool))[None] & valid[:, None, :]
        for i, block in enumerate(self.blocks):
            x = block(x, attention_mask, deterministic, None if modulation is None else modulation.layer(i))
        x = self.final_norm(x[:, length - 3 * context :]).reshape(batch, context, 3, self.embedding_dim)
        return jnp.tanh(self.action_head(x[:, :, 1]))  # from the s_t tokens


def masked_action_error(predicted, batch: DTBatch):
    """Mean squared error of predicted actions [B, K, A] over the batch's valid steps."""
    error = jnp.mean((predicted - batch.actions) ** 2, axis=-1)
    return jnp.sum(error * batch.mask) / jnp.maximum(jnp.sum(batch.mask), 1.0)


def trajectory_arrays(rewards, terminals, timeouts):
    """Host-side: (returns-to-go, timestep, episode end index) of every row, episodes being the runs of
    rows closed by terminals | timeouts (the last row always closes one)."""
    rewards = np.asarray(rewards, np.float64)
    n = rewards.shape[0]
    ends = np.asarray(terminals, bool) | np.asarray(timeouts, bool)
    ends[-1] = True
    end_rows = np.flatnonzero(ends)
    episode = np.searchsorted(end_rows, np.arange(n))  # episode index of every row
    episode_end = end_rows[episode]
    episode_start = np.concatenate([[0], end_rows[:-1] + 1])[episode]
    suffix = np.concatenate([np.cumsum(rewards[::-1])[::-1], [0.0]])  # suffix[i] = sum of rewards[i:]
    returns_to_go = suffix[:n] - suffix[episode_end + 1]
    return returns_to_go, (np.arange(n) - episode_start).astype(np.int32), episode_end.astype(np.int32)


class DT(Agent):
    embedding_dim: int = static(128, help="width of the token embeddings and of the transformer")
    num_layers: int = static(3, help="transformer blocks")
    num_heads: int = static(1, help="attention heads (must divide embedding_dim)")
    context: int = static(20, help="steps K in the context window (3K tokens)")
    max_episode_steps: int = static(1000, help="size of the timestep embedding table (raised to the env's time limit)")
    embedding_dropout: float = static(0.1, help="dropout on the token embeddings")
    attention_dropout: float = static(0.1, help="dropout on the attention weights")
    residual_dropout: float = static(0.1, help="dropout on the attention and MLP outputs")
    learning_rate: float = positive(1e-4, help="AdamW's peak learning rate (after the warm-up)")
    weight_decay: float = hyperparameter(1e-4, low=0.0, low_open=False, help="decoupled (AdamW) weight decay")
    grad_clip: float = positive(0.25, help="global gradient-norm clip")
    warmup_steps: float = hyperparameter(
        10_000.0, low=0.0, low_open=False, help="linear learning-rate warmup, capped at 10% of the run's steps"
    )
    reward_scale: float = positive(0.001, help="returns-to-go are multiplied by this before entering the model")
    target_return: float = hyperparameter(
        float("nan"), help="return (raw env units) to condition on; NaN: the dataset's best episode return"
    )

    name = "dt"
    offline_only = "it learns from whole trajectory windows of a fixed dataset, which online transitions do not form"
    normalizes_rewards = False  # returns-to-go and the target return are in raw environment units
    description = "Decision Transformer: return-conditioned sequence model (offline)"

    def configure(self, spec, total_steps: int) -> "DT":
        agent = super().configure(spec, total_steps)
        return agent.replace(max_episode_steps=max(self.max_episode_steps, int(getattr(spec, "max_episode_steps", 0) or 0)))

    def validate(self) -> "DT":
        if self.embedding_dim % self.num_heads:
            raise ConfigError(f"dt.num_heads ({self.num_heads}) must divide dt.embedding_dim ({self.embedding_dim})")
        for name in ("embedding_dropout", "attention_dropout", "residual_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"dt.{name} must be in [0, 1), got {getattr(self, name)}")
        target = np.asarray(jax.device_get(self.target_return), np.float64)
        # NaN is the "set from the dataset" default, which `adapt_to_dataset` replaces.
        super(DT, self.replace(target_return=np.where(np.isnan(target), 0.0, target))).validate()
        return self

    # ----- data -----

    def adapt_to_dataset(self, dataset, metadata: dict) -> "DT":
        # The best return seen in the data: conditioning far above it (e.g. on the expert reference of a
        # poor dataset) asks for behaviour the model never saw, and scored worse on Pendulum medium-replay.
        if math.isnan(float(np.asarray(self.target_return))):
            return self.replace(target_return=float(dataset.episode_returns().max()))
        return self

    def training_data(self, dataset) -> TrajectoryData:
        rewards = np.asarray(dataset.rewards, np.float64)
        returns_to_go, timesteps, episode_end = trajectory_arrays(rewards, dataset.terminals, dataset.timeouts)
        return TrajectoryData(
            observations=jnp.asarray(dataset.observations, jnp.float32),
            actions=jnp.asarray(dataset.actions, jnp.float32),
            returns_to_go=jnp.asarray(returns_to_go, jnp.float32),
            timesteps=jnp.asarray(timesteps),
            episode_end=jnp.asarray(episode_end),
        )

    def sample(self, data: TrajectoryData, key, batch_size: int) -> DTBatch:
        """Windows of K rows from uniform start rows, cut at the episode's end (padding after it)."""
        return self.windows(data, jax.random.randint(key, (batch_size,), 0, data.returns_to_go.shape[0]))

    def windows(self, data: TrajectoryData, start) -> DTBatch:
        """The windows of K rows from rows `start` [B], cut at the episode's end (padding after it)."""
        rows = start[:, None] + jnp.arange(self.context)[None]
        mask = rows <= data.episode_end[start][:, None]
        rows = jnp.where(mask, rows, start[:, None])  # any in-range row; zeroed below

        def take(x):
            m = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
            return jnp.where(m, x[rows], jnp.zeros((), x.dtype))

        return DTBatch(
            returns_to_go=take(data.returns_to_go) * self.reward_scale,
            observations=take(data.observations),
            actions=take(data.actions),
            timesteps=take(data.timesteps),
            mask=mask.astype(jnp.float32),
        )

    # ----- model and training -----

    @property
    def net(self) -> DecisionTransformerNet:
        return DecisionTransformerNet(
            action_dim=self.action_dim,
            embedding_dim=self.embedding_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            max_timestep=self.max_episode_steps,
            embedding_dropout=self.embedding_dropout,
            attention_dropout=self.attention_dropout,
            residual_dropout=self.residual_dropout,
        )

    def predict(self, params, batch: DTBatch, key=None, modulation: Modulation | None = None):
        """Predicted actions [B, K, action_dim]; dropout is on when a key is given."""
        rngs = None if key is None else {"dropout": key}
        return self.net.apply(
            params,
            batch.returns_to_go,
            batch.observations,
            batch.actions,
            batch.timesteps,
            batch.mask,
            deterministic=key is None,
            rngs=rngs,
            modulation=modulation,
        )

    def state_tokens(self, params, batch: DTBatch):
        """The embedded state tokens [B, K, d] of a batch of windows."""
        return self.net.apply(params, batch.observations, batch.timesteps, method=DecisionTransformerNet.state_tokens)

    def action_loss(self, params, batch: DTBatch, key=None, modulation: Modulation | None = None):
        """Mean squared action error over the valid steps."""
        return masked_action_error(self.predict(params, batch, key, modulation), batch)

    def init(self, key) -> DTState:
        k = self.context
        dummy = DTBatch(
            jnp.zeros((1, k)),
            jnp.zeros((1, k, self.obs_dim)),
            jnp.zeros((1, k, self.action_dim)),
            jnp.zeros((1, k), jnp.int32),
            jnp.ones((1, k)),
        )
        params = self.net.init(
            {"params": key},
            dummy.returns_to_go,
            dummy.observations,
            dummy.actions,
            dummy.timesteps,
            dummy.mask,
        )
        return DTState(Trainable.create(params, self.optimizer()), jnp.zeros((), jnp.int32))

    def optimizer(self) -> optax.GradientTransformation:
        """AdamW (decoupled decay of every parameter) on gradients clipped by their global norm, without the
        learning rate: `Trainable` applies `learning_rate_at`, a pytree leaf and its warm-up, outside."""
        return optax.chain(
            optax.clip_by_global_norm(self.grad_clip),
            optax.scale_by_adam(),
            optax.add_decayed_weights(self.weight_decay),
        )

    def learning_rate_at(self, step):
        warmup = jnp.minimum(self.warmup_steps, 0.1 * self.total_steps)
        return self.learning_rate * jnp.minimum(1.0, (step + 1) / jnp.maximum(warmup, 1.0))

    def update(self, state: DTState, batch: DTBatch, key):
        loss, grads = jax.value_and_grad(self.action_loss)(state.model.params, batch, key)
        lr = self.learning_rate_at(state.step)
        model = state.model.apply_gradients(grads, lr, self.optimizer())
        metrics = {"action_loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": lr}  # before clipping
        return DTState(model, state.step + 1), metrics

    # ----- acting -----

    def initial_carry(self, state: DTState, first_obs) -> DTCarry:
        batch, k = first_obs.shape[0], self.context
        return DTCarry(
            returns_to_go=jnp.zeros((batch, k)),
            observations=jnp.zeros((batch, k, self.obs_dim)),
            actions=jnp.zeros((batch, k, self.action_dim)),
            timesteps=jnp.zeros((batch, k), jnp.int32),
            target=jnp.full((batch,), self.target_return * self.reward_scale, jnp.float32),
            step=jnp.zeros((batch,), jnp.int32),
        )

    def act_with_carry(self, state: DTState, obs, key, carry: DTCarry, deterministic: bool = True, predict=None):
        """Append (target return-to-go, obs) as the current step, predict its action and store it.

        The context holds the first steps at positions 0..t while t < K, then the last K steps
        (shifted left by one each step), so the current step sits at min(t, K-1). Acting is always
        deterministic (no dropout, a deterministic action head)."""
        del key, deterministic
        k = self.context
        full = (carry.step >= k)[:, None]  # [B, 1]: the window is full, drop its oldest step
        position = jnp.minimum(carry.step, k - 1)
        current = jnp.arange(k)[None] == position[:, None]  # [B, K] one-hot of the current step

        def shift(x):
            f = full.reshape(full.shape + (1,) * (x.ndim - 2))
            return jnp.where(f, jnp.roll(x, -1, axis=1), x)

        def put(x, value):
            c = current.reshape(current.shape + (1,) * (x.ndim - 2))
            return jnp.where(c, value.reshape(value.shape[:1] + (1,) + value.shape[1:]), shift(x))

        carry = carry.replace(
            returns_to_go=put(carry.returns_to_go, carry.target),
            observations=put(carry.observations, obs.astype(jnp.float32)),
            actions=put(carry.actions, jnp.zeros((obs.shape[0], self.action_dim))),
            timesteps=put(carry.timesteps, carry.step),
        )
        valid = jnp.arange(k)[None] <= position[:, None]
        window = DTBatch(carry.returns_to_go, carry.observations, carry.actions, carry.timesteps, valid.astype(jnp.float32))
        # `predict(window)` replaces the plain model (e.g. a modulated one, `jaxrl.protocols.continual`)
        predicted = (predict or (lambda w: self.predict(state.model.params, w)))(window)  # [B, K, action_dim]
        action = jnp.sum(jnp.where(current[..., None], predicted, 0.0), axis=1)
        carry = carry.replace(actions=jnp.where(current[..., None], action[:, None], carry.actions), step=carry.step + 1)
        return action, carry

    def observe(self, carry: DTCarry, reward) -> DTCarry:
        return carry.replace(target=carry.target - reward * self.reward_scale)

    def act(self, state: DTState, obs, key, deterministic: bool = True):
        """Without a memory: the action at the first step of an episode (context of one step)."""
        action, _ = self.act_with_carry(state, obs, key, self.initial_carry(state, obs), deterministic)
        return action
