"""Hierarchical path-conditioned policies (HAMSTER, Li et al. 2025) on PathWorld: the two levels' models.

- High level (`PathModel`): (image, instruction tokens) -> a coarse path of up to MAX_WAYPOINTS waypoints
  in image coordinates, each with the gripper state after it. Regression (a stated deviation from the
  reference's tokenised VLM output): sigmoid x, y trained by squared error on the label's valid rows,
  logits for "valid" (on every row) and "gripper closed" (on valid rows) trained by cross-entropy.
  The pointing auxiliary task ("where is object j") is the instruction "point <object>", whose label is a
  one-waypoint path at the object, so it trains the same head.
- Low level (`PathPolicy`): (proprioception, image, path) -> action, with the path in one of `ENCODINGS`:
  drawn over the image, drawn in separate channels concatenated to it, a waypoint vector with the
  agent's progress along the path, or that vector with the path ahead of the agent (`paths.path_lookahead`). No instruction: the path carries the task (as in HAMSTER's RVT-2).
- The comparators' `ActionModel`: the high level's encoder (image and instruction) with an action head.
Proprioception is the agent's own state (position, velocity, gripper, what it holds): everything else
(walls, objects, goal) a policy reads off the image. All models train by supervised regression, as
supervised agents through the trainer (`hamster.train_model`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.pathworld import paths
from envs.pathworld.env import instruction
from envs.pathworld.expert import MAX_WAYPOINTS, path_label
from envs.pathworld.layout import CELLS
from envs.pathworld.render import IMAGE_SIZES, image_coordinates, render
from envs.pathworld.world import NUM_OBJECTS, STATE_DIM, TASKS, PathWorldCore, WorldParams, state_vector, unpack
from jaxrl.agents.networks import MLP, ConvEncoder

VERBS = (*TASKS, "point")  # "point": the pointing auxiliary task
OBJECT_NAMES = ("red", "green", "blue")  # the hues render.OBJECT_COLOURS keeps in every palette
ENCODINGS = ("overlay", "channels", "vector", "lookahead")
PROPRIO_DIM = 8  # pos 2, vel 2, grip 1, held NUM_OBJECTS: the first fields of the state vector
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


@functools.partial(jax.jit, static_argnames="per_variant")
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


@functools.partial(jax.jit, static_argnames="size")
def path_examples(params: WorldParams, states, size: int) -> dict:
    """The high level's examples from states [N, STATE_DIM] of variants `params` [N]: the image the
    variant's camera shows, its instruction, and the expert's path label in image coordinates."""

    def one(p, s):
        return {"image": render(unpack(s), p.palette, p.warp, size), "tokens": instruction(p),
                "path": label_in_image(path_label(p, s), p.warp)}  # fmt: skip

    return jax.vmap(one)(params, states)


@functools.partial(jax.jit, static_argnames="size")
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


def proprio(state) -> jax.Array:
    """The agent's own state [..., PROPRIO_DIM] of state vectors [..., STATE_DIM]."""
    return state[..., :PROPRIO_DIM]


# What a policy may read of the state vector besides the image: "proprio", the agent's own state (objects,
# goal and walls only in the image), or "privileged", every field but the wall grid (objects, goal, the
# avoid region, touch progress: the precision a 32 px image cannot give; a stated option of ours).
STATE_VIEWS = {"proprio": PROPRIO_DIM, "privileged": STATE_DIM - CELLS}


def observed_state(state, view: str) -> jax.Array:
    """The fields of state vectors [..., STATE_DIM] a policy reads under `view` (`STATE_VIEWS`)."""
    if view not in STATE_VIEWS:
        raise ValueError(f"unknown state view {view!r}; views: {', '.join(STATE_VIEWS)}")
    return state[..., : STATE_VIEWS[view]]


class InstructedEncoder(nn.Module):
    """Image features next to the instruction's token embeddings (the objects' in order: order matters)."""

    channels: Sequence[int] = (16, 32, 32)
    token_dim: int = 32

    @nn.compact
    def __call__(self, images, tokens):
        features = ConvEncoder(self.channels)(images)
        verb = nn.Embed(len(VERBS), self.token_dim)(tokens[..., 0])
        objects = nn.Embed(NUM_OBJECTS + 1, self.token_dim)(tokens[..., 1:])  # [B, NUM_OBJECTS, d]
        return jnp.concatenate([features, verb, objects.reshape(*objects.shape[:-2], -1)], axis=-1)


class PathModel(nn.Module):
    """The high level: (image, instruction) -> a path."""

    hidden_dims: Sequence[int] = (256, 256)
    channels: Sequence[int] = (16, 32, 32)

    @nn.compact
    def __call__(self, images, tokens) -> PathPrediction:
        x = InstructedEncoder(self.channels)(images, tokens)
        out = MLP(self.hidden_dims, MAX_WAYPOINTS * 4)(x).reshape(*x.shape[:-1], MAX_WAYPOINTS, 4)
        return PathPrediction(jax.nn.sigmoid(out[..., :2]), out[..., 2], out[..., 3])


class ActionModel(nn.Module):
    """A flat policy (and the monolithic one): (proprioception, image, instruction) -> action, through the
    high level's encoder with an action head."""

    action_dim: int = 3
    hidden_dims: Sequence[int] = (256, 256)
    channels: Sequence[int] = (16, 32, 32)

    @nn.compact
    def __call__(self, proprio, images, tokens):
        x = jnp.concatenate([InstructedEncoder(self.channels)(images, tokens), proprio], axis=-1)
        return jnp.tanh(MLP(self.hidden_dims, self.action_dim)(x))


def path_loss(prediction: PathPrediction, target) -> jax.Array:
    """Mean over the batch of: cross-entropy of every row's valid flag, plus, over the label's valid rows,
    the squared xy error (summed over x, y) and the gripper's cross-entropy."""
    valid = target[..., 3]
    valid_ce = optax.sigmoid_binary_cross_entropy(prediction.valid_logit, valid).mean(-1)
    xy = jnp.sum((prediction.xy - target[..., :2]) ** 2, axis=-1)
    grip = optax.sigmoid_binary_cross_entropy(prediction.grip_logit, target[..., 2])
    rows = jnp.maximum(valid.sum(-1), 1.0)
    return jnp.mean(valid_ce + jnp.sum((xy + grip) * valid, -1) / rows)


def encode_path(encoding: str, proprio, image, path, channels=None, position=None) -> tuple[jax.Array | None, jax.Array]:
    """(the image the policy sees, the extra vector) for one encoding of image-coordinate paths [B, M, 4];
    `channels` [B, size, size, 2] are the paths' `paths.path_channels` where already drawn. The vector's
    progress is of the agent's `position` along the path, in the path's image coordinates (where the
    camera shows the agent); None: its arena position (proprioception), the same under the plain camera."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown path encoding {encoding!r}; encodings: {', '.join(ENCODINGS)}")
    none = jnp.zeros(proprio.shape[:-1] + (0,))
    if encoding in ("vector", "lookahead"):
        features = paths.path_vector if encoding == "vector" else paths.path_lookahead
        return image, jax.vmap(features)(path, proprio[..., :2] if position is None else position)
    if channels is None:
        channels = jax.vmap(lambda p: paths.path_channels(p, image.shape[-2], IDENTITY))(path)
    if encoding == "overlay":
        return paths.overlay(image, channels), none
    return jnp.concatenate([image, channels], axis=-1), none


class PathPolicy(nn.Module):
    """The low level: a deterministic policy a = tanh(MLP([image features, proprioception, path vector]))."""

    encoding: str
    action_dim: int = 3
    hidden_dims: Sequence[int] = (256, 256)
    channels: Sequence[int] = (16, 32, 32)
    use_image: bool = True

    @nn.compact
    def __call__(self, proprio, image, path, path_channels=None, position=None):
        image, extra = encode_path(self.encoding, proprio, image, path, path_channels, position)
        parts = [proprio, extra]
        if self.use_image:
            parts.append(ConvEncoder(self.channels)(image))
        return jnp.tanh(MLP(self.hidden_dims, self.action_dim)(jnp.concatenate(parts, axis=-1)))
