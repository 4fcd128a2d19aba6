"""Hierarchical path-conditioned policies (HAMSTER, Li et al. 2025) on PathWorld: the two levels' models.

- High level (`PathModel`): (image, instruction tokens) -> a coarse path of up to MAX_WAYPOINTS waypoints
  in image coordinates, each with the gripper state after it. Regression (a stated deviation from the
  reference's tokenised VLM output): sigmoid x, y trained by squared error on the label's valid rows,
  logits for "valid" (on every row) and "gripper closed" (on valid rows) trained by cross-entropy.
  The pointing auxiliary task ("where is object j") is the instruction "point <object>", whose label is a
  one-waypoint path at the object, so it trains the same head.
- Low level (`PathPolicy`): (state, image, path) -> action, with the path in one of `ENCODINGS`:
  drawn over the image, drawn in separate channels concatenated to it, or a waypoint vector with the
  agent's progress along the path.
Both levels train by supervised regression (`fit`), one compiled scan.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.pathworld import paths
from envs.pathworld.env import instruction
from envs.pathworld.expert import MAX_WAYPOINTS, path_label
from envs.pathworld.render import IMAGE_SIZES, image_coordinates, render
from envs.pathworld.world import NUM_OBJECTS, TASKS, PathWorldCore, WorldParams, state_vector, unpack
from jaxrl.networks import MLP, ConvEncoder

VERBS = (*TASKS, "point")  # "point": the pointing auxiliary task
OBJECT_NAMES = ("red", "green", "blue")  # the hues render.OBJECT_COLOURS keeps in every palette
ENCODINGS = ("overlay", "channels", "vector")
IDENTITY = (0.0, 0.0, 0.0, 1.0)  # paths in image coordinates are drawn without a further warp
_OBJECTS_NAMED = {"reach": 0, "avoid": 0, "push": 1, "pick-place": 1, "point": 1, "touch": NUM_OBJECTS}


def encode_instruction(text: str) -> np.ndarray:
    """Tokens [1 + NUM_OBJECTS] (verb index into VERBS, then object indices, NUM_OBJECTS = none) of an
    instruction such as "pick-place red", "touch green blue red", "reach" or "point blue"."""
    words = text.split()
    if not words or words[0] not in VERBS:
        verb = words[0] if words else ""
        raise ValueError(f"instruction {text!r}: unknown verb {verb!r}; verbs: {', '.join(VERBS)}")
    unknown = [w for w in words[1:] if w not in OBJECT_NAMES]
    if unknown:
        raise ValueError(f"instruction {text!r}: unknown object(s) {unknown}; objects: {', '.join(OBJECT_NAMES)}")
    objects = [OBJECT_NAMES.index(w) for w in words[1:]]
    wanted = _OBJECTS_NAMED[words[0]]
    if len(objects) != wanted or len(set(objects)) != len(objects):
        raise ValueError(f"instruction {text!r}: {words[0]} names {wanted} distinct object(s), got {len(objects)}")
    tokens = np.full(1 + NUM_OBJECTS, NUM_OBJECTS, np.int32)
    tokens[0] = VERBS.index(words[0])
    tokens[1 : 1 + len(objects)] = objects
    return tokens


def check_images(images, size: int) -> None:
    """Images [..., size, size, 3] in [0, 1] (host-side check of what a user passes in)."""
    shape = tuple(np.shape(images))
    if size not in IMAGE_SIZES:
        raise ValueError(f"image size must be one of {IMAGE_SIZES}, got {size}")
    if len(shape) < 3 or shape[-3:] != (size, size, 3):
        raise ValueError(f"images must be [..., {size}, {size}, 3], got shape {shape}")


def label_in_image(path, warp) -> jax.Array:
    """An arena-coordinate path label [M, 4] as the camera shows it: its x, y in image coordinates."""
    return path.at[:, :2].set(image_coordinates(path[:, :2], warp))


def reset_states(params: WorldParams, key, per_variant: int) -> tuple[WorldParams, jax.Array]:
    """`per_variant` initial states [V * n, STATE_DIM] of every variant of stacked params [V], with the
    params repeated to match (row-major: variant, then sample)."""
    core = PathWorldCore()

    def variant(p, key):
        return jax.vmap(lambda k: state_vector(core.reset_state(k, p), p))(jax.random.split(key, per_variant))

    count = jax.tree.leaves(params)[0].shape[0]
    states = jax.vmap(variant)(params, jax.random.split(key, count))
    repeated = jax.tree.map(lambda x: jnp.repeat(x, per_variant, axis=0), params)
    return repeated, states.reshape(count * per_variant, -1)


def path_examples(params: WorldParams, states, size: int) -> dict:
    """The high level's examples from states [N, STATE_DIM] of variants `params` [N]: the image the
    variant's camera shows, its instruction, and the expert's path label in image coordinates."""

    def one(p, s):
        return {"image": render(unpack(s), p.palette, p.warp, size), "tokens": instruction(p),
                "path": label_in_image(path_label(p, s), p.warp)}  # fmt: skip

    return jax.vmap(one)(params, states)


def pointing_examples(params: WorldParams, states, size: int, key) -> dict:
    """The pointing auxiliary task: "point <object j>" (j uniform), labelled with a one-waypoint path at
    object j as the camera shows it."""
    objects = jax.random.randint(key, (states.shape[0],), 0, NUM_OBJECTS)

    def one(p, s, j):
        where = image_coordinates(unpack(s).objects[j], p.warp)
        path = jnp.zeros((MAX_WAYPOINTS, 4)).at[0].set(jnp.concatenate([where, jnp.array([0.0, 1.0])]))
        tokens = jnp.full(1 + NUM_OBJECTS, NUM_OBJECTS, jnp.int32).at[0].set(VERBS.index("point")).at[1].set(j)
        return {"image": render(unpack(s), p.palette, p.warp, size), "tokens": tokens, "path": path}

    return jax.vmap(one)(params, states, objects)


@struct.dataclass
class PathPrediction:
    xy: jax.Array  # [B, M, 2] in [0, 1]
    grip_logit: jax.Array  # [B, M]
    valid_logit: jax.Array  # [B, M]

    def path(self) -> jax.Array:
        """The predicted path [B, M, 4]: valid rows are the leading ones whose valid probability is over
        one half, and the first row always (a path has at least one waypoint)."""
        valid = jnp.cumprod(self.valid_logit > 0, axis=-1).at[:, 0].set(1).astype(jnp.float32)
        grip = (self.grip_logit > 0).astype(jnp.float32)
        return jnp.concatenate([self.xy * valid[..., None], (grip * valid)[..., None], valid[..., None]], axis=-1)


class PathModel(nn.Module):
    """The high level: image features and the instruction's token embeddings -> a path."""

    hidden_dims: Sequence[int] = (256, 256)
    channels: Sequence[int] = (16, 32, 32)
    token_dim: int = 32

    @nn.compact
    def __call__(self, images, tokens) -> PathPrediction:
        features = ConvEncoder(self.channels)(images)
        verb = nn.Embed(len(VERBS), self.token_dim)(tokens[..., 0])
        objects = nn.Embed(NUM_OBJECTS + 1, self.token_dim)(tokens[..., 1:])  # [B, NUM_OBJECTS, d]: order matters
        x = jnp.concatenate([features, verb, objects.reshape(*objects.shape[:-2], -1)], axis=-1)
        out = MLP(self.hidden_dims, MAX_WAYPOINTS * 4)(x).reshape(*x.shape[:-1], MAX_WAYPOINTS, 4)
        return PathPrediction(jax.nn.sigmoid(out[..., :2]), out[..., 2], out[..., 3])


def path_loss(prediction: PathPrediction, target) -> jax.Array:
    """Mean over the batch of: cross-entropy of every row's valid flag, plus, over the label's valid rows,
    the squared xy error (summed over x, y) and the gripper's cross-entropy."""
    valid = target[..., 3]
    valid_ce = optax.sigmoid_binary_cross_entropy(prediction.valid_logit, valid).mean(-1)
    xy = jnp.sum((prediction.xy - target[..., :2]) ** 2, axis=-1)
    grip = optax.sigmoid_binary_cross_entropy(prediction.grip_logit, target[..., 2])
    rows = jnp.maximum(valid.sum(-1), 1.0)
    return jnp.mean(valid_ce + jnp.sum((xy + grip) * valid, -1) / rows)


def encode_path(encoding: str, state, image, path) -> tuple[jax.Array | None, jax.Array]:
    """(the image the policy sees or None, the extra vector) for one encoding of an image-coordinate path;
    state [.., STATE_DIM] (its position, mapped through no camera, gives the vector's progress)."""
    if encoding == "overlay":
        return jax.vmap(lambda i, p: paths.draw_path(i, p, IDENTITY))(image, path), jnp.zeros(state.shape[:-1] + (0,))
    if encoding == "channels":
        drawn = jax.vmap(lambda p: paths.path_channels(p, image.shape[-2], IDENTITY))(path)
        return jnp.concatenate([image, drawn], axis=-1), jnp.zeros(state.shape[:-1] + (0,))
    if encoding == "vector":
        position = unpack(state).pos
        return image, jax.vmap(paths.path_vector)(path, position)
    raise ValueError(f"unknown path encoding {encoding!r}; encodings: {', '.join(ENCODINGS)}")


class PathPolicy(nn.Module):
    """The low level: a deterministic policy a = tanh(MLP([image features, state, path vector]))."""

    encoding: str
    action_dim: int = 3
    hidden_dims: Sequence[int] = (256, 256)
    channels: Sequence[int] = (16, 32, 32)
    use_image: bool = True

    @nn.compact
    def __call__(self, state, image, path):
        image, extra = encode_path(self.encoding, state, image, path)
        parts = [state, extra]
        if self.use_image:
            parts.append(ConvEncoder(self.channels)(image))
        return jnp.tanh(MLP(self.hidden_dims, self.action_dim)(jnp.concatenate(parts, axis=-1)))


def fit(loss: Callable, params, data, key, steps: int, batch_size: int, learning_rate: float = 1e-3):
    """`steps` Adam updates of loss(params, batch) on uniform minibatches of the pytree `data` (leading
    axis: examples), in one compiled scan. Returns (params, losses [steps])."""
    optimizer = optax.adam(learning_rate)
    size = jax.tree.leaves(data)[0].shape[0]

    @jax.jit
    def run(params, data, key):
        def step(carry, key):
            params, opt_state = carry
            batch = jax.tree.map(lambda x: x[jax.random.randint(key, (batch_size,), 0, size)], data)
            value, grads = jax.value_and_grad(loss)(params, batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))
        return params, losses

    return run(params, data, key)
