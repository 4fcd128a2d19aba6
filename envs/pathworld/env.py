"""The PathWorld environment: `envs.make("pathworld/push", obs="image", image_size=32)`.

The physics and tasks are `envs.pathworld.world`; this adds the observation modes:
- "state": the state vector (`world.StateObs`);
- "image": a top-down RGB image in [0, 1], [size, size, 3] (`envs.pathworld.render`);
- "both": the flattened image followed by the state vector (`split` separates them);
and, with `task_info`, the task identity appended to the vector: "onehot" (task kind and target
object) or "tokens" (an instruction: verb, then object ids, NUM_OBJECTS padding an unused slot).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.core import Env, EnvSpec
from envs.pathworld import world
from envs.pathworld.render import IMAGE_SIZES, render
from envs.pathworld.world import NUM_OBJECTS, STATE_DIM, TASKS, WorldParams

OBS_MODES = ("state", "image", "both")
TASK_INFO = ("none", "onehot", "tokens")
MAX_EPISODE_STEPS = 150
TASK_INFO_DIMS = {"none": 0, "onehot": len(TASKS) + NUM_OBJECTS, "tokens": 1 + NUM_OBJECTS}


def instruction(params: WorldParams) -> jax.Array:
    """The task as tokens: verb (index into TASKS), then the objects it names (NUM_OBJECTS = none):
    push / pick-place name the target, touch names all objects in order, reach / avoid none."""
    none = jnp.full(NUM_OBJECTS, NUM_OBJECTS, jnp.int32)
    target = none.at[0].set(params.target)
    objects = jnp.where(params.task == world.TOUCH, params.order,
                        jnp.where((params.task == world.PUSH) | (params.task == world.PICK_PLACE), target, none))  # fmt: skip
    return jnp.concatenate([params.task[None], objects])


def split(obs: jax.Array, image_size: int) -> tuple[jax.Array, jax.Array]:
    """(image, vector) of a "both" observation (or a batch of them)."""
    n = image_size * image_size * 3
    return obs[..., :n].reshape(*obs.shape[:-1], image_size, image_size, 3), obs[..., n:]


class PathWorld(Env):
    dynamics = {"gain": "gain", "damping": "damping", "radius": "radius"}

    def __init__(self, name: str, task: str = "reach", layout: int = 0, obs: str = "state", image_size: int = 32,
                 task_info: str = "none", sparse: bool = False, **variant):  # fmt: skip
        if obs not in OBS_MODES:
            raise ValueError(f"{name}: unknown observation mode {obs!r}; modes: {', '.join(OBS_MODES)}")
        if image_size not in IMAGE_SIZES:
            sizes = ", ".join(map(str, IMAGE_SIZES))
            raise ValueError(f"{name}: image_size must be one of {sizes}, got {image_size!r}")
        if task_info not in TASK_INFO:
            raise ValueError(f"{name}: unknown task_info {task_info!r}; choices: {', '.join(TASK_INFO)}")
        self.obs_mode, self.image_size, self.task_info = obs, image_size, task_info
        self.default_params = self.nominal_params = world.world_params(task, layout=layout, sparse=sparse, **variant)
        self._core = world.PathWorldCore()
        image_dim = image_size * image_size * 3
        vector = STATE_DIM + TASK_INFO_DIMS[task_info]
        shape = {"state": (vector,), "image": (image_size, image_size, 3), "both": (image_dim + vector,)}[obs]
        if obs == "image" and task_info != "none":
            raise ValueError(f"{name}: task_info needs a vector observation (obs='state' or 'both'), not obs='image'")
        self.spec = EnvSpec(name=name, obs_shape=shape, action_shape=(3,), action_low=(-1.0,) * 3,
                            action_high=(1.0,) * 3, max_episode_steps=MAX_EPISODE_STEPS)  # fmt: skip

    def observe(self, state: world.WorldState, params: WorldParams) -> jax.Array:
        vector = world.state_vector(state, params)
        if self.task_info == "onehot":
            vector = jnp.concatenate(
                [vector, jax.nn.one_hot(params.task, len(TASKS)), jax.nn.one_hot(params.target, NUM_OBJECTS)]
            )
        elif self.task_info == "tokens":
            vector = jnp.concatenate([vector, instruction(params).astype(jnp.float32)])
        if self.obs_mode == "state":
            return vector
        image = render(world.unpack(vector[:STATE_DIM]), params.palette, params.warp, self.image_size)
        return image if self.obs_mode == "image" else jnp.concatenate([image.ravel(), vector])

    def reset(self, key, params=None):
        params = self._params(params)
        state = self._core.reset_state(key, params)
        return self.observe(state, params), state

    def step(self, key, state, action, params=None):
        params = self._params(params)
        state, reward, success = self._core.step_state(state, action, params)
        return self.observe(state, params), state, reward, success, jnp.zeros((), bool), {"success": success}
