"""PathWorld: a 2-D arena with walls, objects and a point agent, for many related tasks at once.

One physics, five tasks, all selected by `WorldParams`, so a batch of different tasks, layouts,
embodiments and visual domains is one `vmap` over params:

- reach: bring the agent to the goal;
- push: push object `target` onto the goal (the gripper is disabled);
- pick-place: carry object `target` to the goal and release it there;
- touch: touch the objects in the order `order`;
- avoid: reach the goal without the agent's centre ever entering the region.

The agent is a damped double integrator, vel' = (1 - damping) vel + gain a, pos' = pos + vel', with
a in [-1, 1]^2 and a third action, grip (> 0 closes the gripper). Moves into walls are cancelled per
axis (the agent slides along them); an agent that runs into a free object pushes it, unless the
object would hit a wall or another object, in which case the agent stops. A closing gripper picks the
nearest object in reach, which then moves with the agent until the gripper opens.

An episode ends (terminated) when the task succeeds: `info["success"]`. The dense reward is
success - d, with d >= 0 the task's remaining distance (0 at success), minus 1 per step inside the
avoid region; the sparse reward is success itself (so a sparse return is the success rate).

Task identity (kind, target, order) is not in the observation: task-agnostic methods infer it. The
state observation (see `StateObs`) holds everything else, the occupancy grid included, so an image can
be rendered from it (`envs.pathworld.render`) and a dataset of states serves image methods too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from envs.pathworld.layout import CELL, CELLS, GRID, cell_center, generate, push_reachable

TASKS = ("reach", "push", "pick-place", "touch", "avoid")
REACH, PUSH, PICK_PLACE, TOUCH, AVOID = range(len(TASKS))
NUM_OBJECTS = 3
OBJECT_RADIUS = 0.04
SUCCESS_RADIUS = 0.05  # of the goal, for the agent (reach, avoid) or the object (push, pick-place)
GRIP_REACH = 0.02  # beyond contact, how far the gripper reaches
TOUCH_REACH = 0.01  # beyond contact, what counts as touching
REGION_RADIUS = 0.08  # the avoid region, around a free cell's centre
STAGE_DISTANCE = 0.5  # d of each touch still to do after the next one


@struct.dataclass
class WorldParams:
    """A task variant in an embodiment and a visual domain; every leaf may be batched (vmap)."""

    free: jax.Array  # bool[GRID, GRID], the layout (`layout.generate(seed)`)
    task: jax.Array  # index into TASKS
    target: jax.Array  # the object of push / pick-place
    order: jax.Array  # int[NUM_OBJECTS], the touch order
    sparse: jax.Array  # bool: reward = success only
    gain: jax.Array = 0.012  # velocity change per step at full action
    damping: jax.Array = 0.25  # fraction of velocity lost per step
    radius: jax.Array = 0.04  # the agent's
    palette: jax.Array = 0  # visual domain: colours and textures (render)
    warp: jax.Array = (0.0, 0.0, 0.0, 1.0)  # camera: shift x, shift y, rotation (rad), zoom (render)


def world_params(task: str | int = "reach", layout: int = 0, target: int = 0, order=(0, 1, 2), sparse: bool = False,
                 palette: int = 0, warp=(0.0, 0.0, 0.0, 1.0), **physics) -> WorldParams:  # fmt: skip
    """Params of one variant; `task` by name or index, `layout` a layout seed. Raises ValueError."""
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown PathWorld task {task!r}; tasks: {', '.join(TASKS)}")
        task = TASKS.index(task)
    if not 0 <= target < NUM_OBJECTS:
        raise ValueError(f"PathWorld target object must be in [0, {NUM_OBJECTS}), got {target}")
    if sorted(order) != list(range(NUM_OBJECTS)):
        raise ValueError(f"PathWorld touch order must be a permutation of 0..{NUM_OBJECTS - 1}, got {tuple(order)}")
    unknown = set(physics) - {"gain", "damping", "radius"}
    if unknown:
        raise ValueError(f"unknown PathWorld physics {sorted(unknown)}; physics: gain, damping, radius")
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return WorldParams(free=generate(layout), task=jnp.asarray(task, jnp.int32), target=jnp.asarray(target, jnp.int32),
                       order=jnp.asarray(order, jnp.int32), sparse=jnp.asarray(sparse), palette=jnp.asarray(palette, jnp.int32),
                       warp=f32(warp), **{k: f32(v) for k, v in {**_PHYSICS, **physics}.items()})  # fmt: skip


_PHYSICS = {"gain": 0.012, "damping": 0.25, "radius": 0.04}


@struct.dataclass
class WorldState:
    pos: jax.Array  # [2]
    vel: jax.Array  # [2]
    grip: jax.Array  # bool: gripper closed
    held: jax.Array  # the held object, -1 for none
    objects: jax.Array  # [NUM_OBJECTS, 2]
    goal: jax.Array  # [2]
    region: jax.Array  # [3]: centre x, y and radius (0 unless the task is avoid)
    progress: jax.Array  # objects touched in order so far
    failed: jax.Array  # bool: the agent has entered the avoid region


@struct.dataclass
class StateObs:
    """The fields of the state observation vector, in order (`state_vector` / `unpack`)."""

    pos: jax.Array  # 2
    vel: jax.Array  # 2
    grip: jax.Array  # 1
    held: jax.Array  # NUM_OBJECTS, one-hot
    objects: jax.Array  # NUM_OBJECTS * 2
    goal: jax.Array  # 2
    region: jax.Array  # 3
    progress: jax.Array  # 1, touched / NUM_OBJECTS
    failed: jax.Array  # 1
    free: jax.Array  # GRID * GRID, 1 where free


_WIDTHS = {"pos": 2, "vel": 2, "grip": 1, "held": NUM_OBJECTS, "objects": 2 * NUM_OBJECTS, "goal": 2, "region": 3,
           "progress": 1, "failed": 1, "free": CELLS}  # fmt: skip
STATE_DIM = sum(_WIDTHS.values())


def state_vector(state: WorldState, params: WorldParams) -> jax.Array:
    parts = [state.pos, state.vel, state.grip[None], jax.nn.one_hot(state.held, NUM_OBJECTS), state.objects.ravel(),
             state.goal, state.region, state.progress[None] / NUM_OBJECTS, state.failed[None], params.free.ravel()]  # fmt: skip
    return jnp.concatenate([jnp.asarray(p, jnp.float32) for p in parts])


def unpack(obs: jax.Array) -> StateObs:
    """The named fields of a state observation (or a batch: leading axes are kept)."""
    fields, start = {}, 0
    for name, width in _WIDTHS.items():
        fields[name] = obs[..., start : start + width]
        start += width
    fields["objects"] = fields["objects"].reshape(*obs.shape[:-1], NUM_OBJECTS, 2)
    fields["free"] = fields["free"].reshape(*obs.shape[:-1], GRID, GRID) > 0.5
    return StateObs(**fields)


def wall_overlap(pos: jax.Array, radius, free: jax.Array) -> jax.Array:
    """Whether a disc overlaps a wall cell or leaves the arena."""
    lo = jnp.arange(GRID, dtype=jnp.float32) * CELL
    nearest_x = jnp.clip(pos[0], lo, lo + CELL)[:, None]  # closest point of every cell to pos
    nearest_y = jnp.clip(pos[1], lo, lo + CELL)[None, :]
    touches = (nearest_x - pos[0]) ** 2 + (nearest_y - pos[1]) ** 2 < radius**2
    outside = jnp.any(pos < radius) | jnp.any(pos > 1.0 - radius)
    return outside | jnp.any(touches & ~free)


def _sample_positions(key, params: WorldParams):
    """Distinct free cells for the agent, the objects, the region and the goal, jittered inside them.

    A push goal is drawn among the cells the target object can be pushed to (`layout.distance_field`
    with pushable steps), where there are any."""
    k_cells, k_goal, k_jitter = jax.random.split(key, 3)
    p = params.free.ravel().astype(jnp.float32)
    cells = jax.random.choice(k_cells, CELLS, (NUM_OBJECTS + 2,), replace=False, p=p / p.sum())
    taken = jnp.zeros(CELLS, bool).at[cells].set(True)
    xy = jnp.stack([cells // GRID, cells % GRID], axis=1)
    target_cell = xy[1 + params.target]
    ok = params.free.ravel() & ~taken
    push_ok = ok & push_reachable(params.free, target_cell).ravel()
    goal_ok = jnp.where((params.task == PUSH) & push_ok.any(), push_ok, ok)
    goal_p = goal_ok.astype(jnp.float32)
    goal_cell = jax.random.choice(k_goal, CELLS, p=goal_p / goal_p.sum())
    xy = jnp.concatenate([xy, jnp.stack([goal_cell // GRID, goal_cell % GRID])[None]])
    slack = jnp.maximum(0.5 * CELL - jnp.maximum(params.radius, OBJECT_RADIUS) - 1e-3, 0.0)
    points = cell_center(xy) + jax.random.uniform(k_jitter, xy.shape, minval=-slack, maxval=slack)
    agent, objects, region, goal = points[0], points[1 : 1 + NUM_OBJECTS], cell_center(xy[-2]), points[-1]
    return agent, objects, region, goal


class PathWorldCore:
    """reset/step of the physics and tasks; `envs.pathworld.PathWorld` adds observation modes."""

    def reset_state(self, key, params: WorldParams) -> WorldState:
        agent, objects, region, goal = _sample_positions(key, params)
        radius = jnp.where(params.task == AVOID, REGION_RADIUS, 0.0)
        zero = jnp.zeros((), jnp.int32)
        return WorldState(pos=agent, vel=jnp.zeros(2), grip=jnp.zeros((), bool), held=zero - 1, objects=objects,
                          goal=goal, region=jnp.concatenate([region, radius[None]]), progress=zero,
                          failed=jnp.zeros((), bool))  # fmt: skip

    def step_state(self, state: WorldState, action: jax.Array, params: WorldParams):
        """The next state, reward, success."""
        move, grip = jnp.clip(action[:2], -1.0, 1.0), (action[2] > 0) & (params.task != PUSH)
        r = params.radius
        vel = (1.0 - jnp.clip(params.damping, 0.0, 1.0)) * state.vel + params.gain * move
        # each axis's move is cancelled if it would overlap a wall or push an object that cannot move
        # (the agent slides along walls and stuck objects)
        pos, objects = state.pos, state.objects
        for axis in range(2):
            trial = pos.at[axis].add(vel[axis])
            pushed, stuck = self._push(objects, state.held, pos, trial, params)
            blocked = wall_overlap(trial, r, params.free) | stuck
            pos, objects = jnp.where(blocked, pos, trial), jnp.where(blocked, objects, pushed)
            vel = vel.at[axis].set(jnp.where(blocked, 0.0, vel[axis]))
        # the gripper: closing picks the nearest object in reach; opening drops it where it is
        gap = jnp.linalg.norm(objects - pos, axis=1)
        nearest = jnp.argmin(gap)
        pick = grip & (state.held < 0) & (gap[nearest] < r + OBJECT_RADIUS + GRIP_REACH)
        held = jnp.where(grip, jnp.where(pick, nearest, state.held), -1)
        objects = jnp.where((jnp.arange(NUM_OBJECTS) == held)[:, None], pos, objects)
        # touch order and the avoid region
        next_touch = params.order[jnp.minimum(state.progress, NUM_OBJECTS - 1)]
        touching = jnp.linalg.norm(objects[next_touch] - pos) < r + OBJECT_RADIUS + TOUCH_REACH
        progress = jnp.minimum(state.progress + touching.astype(jnp.int32), NUM_OBJECTS)
        inside = jnp.linalg.norm(pos - state.region[:2]) < state.region[2]
        new = state.replace(pos=pos, vel=vel, grip=grip, held=held, objects=objects, progress=progress,
                            failed=state.failed | inside)  # fmt: skip
        success, distance = self.success(new, params)
        dense = success.astype(jnp.float32) - distance - inside.astype(jnp.float32)
        reward = jnp.where(params.sparse, success.astype(jnp.float32), dense)
        return new, reward, success

    def _push(self, objects, held, pos, trial, params: WorldParams):
        """(objects after the agent moves from pos to trial, whether an object it runs into cannot move:
        it would overlap a wall or another object)."""
        offset = objects - trial
        gap = jnp.linalg.norm(offset, axis=1)
        moving_in = (offset @ (trial - pos)) > 0
        free_object = jnp.arange(NUM_OBJECTS) != held
        hit = (gap < params.radius + OBJECT_RADIUS) & moving_in & free_object
        normal = offset / jnp.maximum(gap, 1e-6)[:, None]
        pushed = jnp.where(hit[:, None], trial + normal * (params.radius + OBJECT_RADIUS), objects)
        into_wall = jax.vmap(wall_overlap, in_axes=(0, None, None))(pushed, OBJECT_RADIUS, params.free)
        pair = jnp.linalg.norm(pushed[:, None] - pushed[None], axis=-1) < 2 * OBJECT_RADIUS
        into_object = (pair & ~jnp.eye(NUM_OBJECTS, dtype=bool) & free_object[None]).any(1)
        return pushed, jnp.any(hit & (into_wall | into_object))

    def success(self, state: WorldState, params: WorldParams):
        """(success, d): whether the task is done, and its remaining distance d >= 0 (dense reward)."""
        to_goal = jnp.linalg.norm(state.pos - state.goal)
        obj = state.objects[params.target]
        obj_to_goal = jnp.linalg.norm(obj - state.goal)
        to_obj = jnp.linalg.norm(state.pos - obj)
        carried = state.held == params.target
        done = state.progress >= NUM_OBJECTS
        next_touch = params.order[jnp.minimum(state.progress, NUM_OBJECTS - 1)]
        to_touch = jnp.linalg.norm(state.pos - state.objects[next_touch])
        reach_r = params.radius + OBJECT_RADIUS  # where contact begins
        successes = jnp.stack([
            to_goal < SUCCESS_RADIUS,
            obj_to_goal < SUCCESS_RADIUS,
            (obj_to_goal < SUCCESS_RADIUS) & ~carried,
            done,
            (to_goal < SUCCESS_RADIUS) & ~state.failed,
        ])  # fmt: skip
        distances = jnp.stack([
            to_goal,
            jnp.maximum(to_obj - reach_r, 0.0) + obj_to_goal,
            jnp.where(carried, 0.0, jnp.maximum(to_obj - reach_r, 0.0)) + obj_to_goal,
            jnp.where(done, 0.0, jnp.maximum(to_touch - reach_r, 0.0) + STAGE_DISTANCE * (NUM_OBJECTS - 1 - state.progress)),
            to_goal,
        ])  # fmt: skip
        success = successes[params.task]
        return success, jnp.where(success, 0.0, distances[params.task])
