"""Scripted PathWorld experts and their path labels, vmappable like the env.

The expert plans on the occupancy grid (breadth-first distance fields, `layout`), steers towards the
next cell's centre (the exact target point in the last cell) with a velocity controller that knows
the embodiment's gain and damping, and runs the task's stages: push from behind the object along a
pushable route, grip at the object and release at the goal, touch the landmarks in order, route
around the avoid region. A noise level adds N(0, noise) to the move actions (the medium datasets).

Path labels (`expert_path`) are the expert's planned route from the episode's first state, one leg
per stage, simplified by Ramer-Douglas-Peucker (eps 0.05 arena units, raised if needed) to at most
MAX_WAYPOINTS points, each with the gripper state after it; leg ends are always kept (grip events).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.pathworld import world
from envs.pathworld.layout import CELLS, cell_center, cell_of, distance_field, next_cell, route
from envs.pathworld.world import NUM_OBJECTS, OBJECT_RADIUS, STATE_DIM, StateObs, WorldParams

MAX_WAYPOINTS = 6
RDP_EPS = 0.05
TOP_SPEED = 0.04  # per step, below the default embodiment's top speed (gain / damping = 0.048)
APPROACH = 0.5  # fraction of the remaining distance asked for per step near a target
RELEASE_RADIUS = 0.02
PUSH_SPEED = 0.025
LEGS = 3  # the most stages a task has (touch: three landmarks)


def _heading(params: WorldParams, obs: StateObs, point: jax.Array, free: jax.Array, skip=-1) -> jax.Array:
    """The next point to steer at on the way to `point`: the next cell's centre, or `point` in its cell.

    Cells holding a free object (other than object `skip`) are routed around: bumping one into a wall
    would stop the agent."""
    here, there = cell_of(obs.pos), cell_of(point)
    blocked = _object_cells(obs, skip).at[here[0], here[1]].set(False).at[there[0], there[1]].set(False)
    field = distance_field(free & ~blocked, there)
    nxt = next_cell(field, here)
    return jnp.where(jnp.all(nxt == here), point, cell_center(nxt))


def _drive(params: WorldParams, obs: StateObs, velocity: jax.Array) -> jax.Array:
    """The move action that gives `velocity` next step (clipped): inverts vel' = (1 - c) vel + g a."""
    return jnp.clip((velocity - (1.0 - params.damping) * obs.vel) / params.gain, -1.0, 1.0)


def _towards(obs: StateObs, point: jax.Array, speed=TOP_SPEED) -> jax.Array:
    offset = point - obs.pos
    dist = jnp.linalg.norm(offset)
    return offset / jnp.maximum(dist, 1e-6) * jnp.minimum(speed, APPROACH * dist)


def _object_cells(obs: StateObs, skip) -> jax.Array:
    """bool[GRID, GRID]: the cells of the free objects other than `skip`."""
    cells = cell_of(obs.objects)
    in_the_way = (obs.held < 0.5) & (jnp.arange(NUM_OBJECTS) != skip)
    return jnp.zeros_like(obs.free).at[cells[:, 0], cells[:, 1]].max(in_the_way)


def _sidestep(params: WorldParams, obs: StateObs, velocity: jax.Array, skip) -> jax.Array:
    """`velocity` with its part into any nearby free object (other than `skip`) turned sideways, so the
    agent slips past objects instead of pushing them into walls."""
    for j in range(NUM_OBJECTS):
        offset = obs.objects[j] - obs.pos
        dist = jnp.linalg.norm(offset)
        n = offset / jnp.maximum(dist, 1e-6)
        into = velocity @ n
        tangent = jnp.array([-n[1], n[0]])
        side = jnp.where(velocity @ tangent >= 0, 1.0, -1.0)
        avoid = (j != skip) & (obs.held[j] < 0.5) & (dist < params.radius + OBJECT_RADIUS + 0.03) & (into > 0)
        velocity = jnp.where(avoid, velocity - into * n + side * into * tangent, velocity)
    return velocity


def _push_plan(params: WorldParams, obs: StateObs):
    """(direction the object should move, the point behind it the pusher must stand at)."""
    obj = obs.objects[params.target]
    field = distance_field(obs.free & ~_object_cells(obs, params.target), cell_of(obs.goal), pushable=True)
    here = cell_of(obj)
    nxt = next_cell(field, here)
    way = jnp.where(jnp.all(nxt == here), obs.goal, cell_center(nxt))
    offset = way - obj
    direction = offset / jnp.maximum(jnp.linalg.norm(offset), 1e-6)
    return direction, obj - direction * (params.radius + OBJECT_RADIUS + 0.01)


def expert_action(params: WorldParams, state_obs: jax.Array, key: jax.Array, noise=0.0) -> jax.Array:
    """The expert's action [3] for one state observation (its first STATE_DIM entries are read)."""
    obs = world.unpack(state_obs[:STATE_DIM])
    free = obs.free
    held = jnp.argmax(obs.held)
    holding = obs.held.max() > 0.5
    target_obj = obs.objects[params.target]
    grip_range = params.radius + OBJECT_RADIUS + 0.06

    # reach / avoid (the region's cell is taken off the grid)
    region_cell = cell_of(obs.region[:2])
    no_region = free.at[region_cell[0], region_cell[1]].set(free[region_cell[0], region_cell[1]] & (obs.region[2] <= 0))
    v_reach = _towards(obs, _heading(params, obs, obs.goal, no_region))

    # pick-place: fetch, grip, carry, release at the goal
    carrying = holding & (held == params.target)
    fetch = _heading(params, obs, target_obj, free, skip=params.target)
    carry = _heading(params, obs, obs.goal, free)
    v_pick = _towards(obs, jnp.where(carrying, carry, fetch))
    near_goal = jnp.linalg.norm(obs.pos - obs.goal) < RELEASE_RADIUS
    grip_pick = jnp.where(carrying, ~near_goal, ~holding & (jnp.linalg.norm(obs.pos - target_obj) < grip_range))

    # push: get behind the object (around it: its cell is taken off the grid), then push along the route
    direction, behind = _push_plan(params, obs)
    obj_cell = cell_of(target_obj)
    here = cell_of(obs.pos)
    around = free.at[obj_cell[0], obj_cell[1]].set(jnp.all(here == obj_cell))
    rel = obs.pos - target_obj
    lateral = rel - (rel @ direction) * direction
    in_position = (rel @ direction < -0.8 * (params.radius + OBJECT_RADIUS)) & (jnp.linalg.norm(lateral) < 0.02)
    v_push = jnp.where(
        in_position,
        direction * PUSH_SPEED - 0.5 * lateral,
        _towards(obs, _heading(params, obs, behind, around, skip=params.target)),
    )

    # touch the next landmark
    progress = jnp.round(obs.progress[0] * NUM_OBJECTS).astype(jnp.int32)
    landmark = obs.objects[params.order[jnp.minimum(progress, NUM_OBJECTS - 1)]]
    v_touch = _towards(obs, _heading(params, obs, landmark, free, skip=params.order[jnp.minimum(progress, NUM_OBJECTS - 1)]))

    skip = jnp.stack(
        [-1, jnp.where(in_position, params.target, -1), params.target, params.order[jnp.minimum(progress, NUM_OBJECTS - 1)], -1]
    )[params.task]
    velocity = _sidestep(params, obs, jnp.stack([v_reach, v_push, v_pick, v_touch, v_reach])[params.task], skip)
    grip = jnp.where(params.task == world.PICK_PLACE, grip_pick, False)
    move = _drive(params, obs, velocity) + noise * jax.random.normal(key, (2,))
    return jnp.concatenate([jnp.clip(move, -1.0, 1.0), jnp.where(grip, 1.0, -1.0)[None]])


def _leg(free: jax.Array, start: jax.Array, end: jax.Array):
    """A planned leg: [CELLS + 1, 2] points (start, the route's cell centres, end) and their validity."""
    cells = route(distance_field(free, cell_of(end)), cell_of(start))
    moved = jnp.concatenate([jnp.array([True]), jnp.any(cells[1:] != cells[:-1], axis=1)])
    count = jnp.sum(jnp.cumprod(moved))  # cells up to the end of the route (it repeats its last cell)
    # start, the centres of the cells between, end (in place of the last cell's centre)
    last = jnp.maximum(count - 1, 1)
    idx = jnp.arange(CELLS + 1)
    points = jnp.concatenate([cell_center(cells), end[None]])
    points = jnp.where((idx == 0)[:, None], start, jnp.where((idx == last)[:, None], end, points))
    return points, idx <= last


def _legs(params: WorldParams, obs: StateObs):
    """The task's stages as (start, end, gripper closed along the leg, closed at its end), LEGS of each
    (unused legs have zero length and are dropped)."""
    obj = obs.objects[params.target]
    landmarks = obs.objects[params.order]
    pos, goal = obs.pos, obs.goal
    stay = jnp.stack([goal, goal])
    legs = jnp.stack([
        jnp.stack([jnp.stack([pos, goal]), stay, stay]),  # reach
        jnp.stack([jnp.stack([pos, obj]), jnp.stack([obj, goal]), stay]),  # push
        jnp.stack([jnp.stack([pos, obj]), jnp.stack([obj, goal]), stay]),  # pick-place
        jnp.stack([jnp.stack([pos, landmarks[0]]), landmarks[:2], landmarks[1:]]),  # touch
        jnp.stack([jnp.stack([pos, goal]), stay, stay]),  # avoid
    ])[params.task]  # fmt: skip
    used = jnp.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0]], bool)[params.task]
    pick = params.task == world.PICK_PLACE
    grip_along = jnp.array([False, True, False]) & pick
    grip_end = jnp.array([True, False, False]) & pick
    return legs, used, grip_along, grip_end


def _segment_distance(p, a, b):
    ab, ap = b - a, p - a
    t = jnp.clip(jnp.sum(ap * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return jnp.linalg.norm(ap - t[..., None] * ab, axis=-1)


def rdp_keep(points: jax.Array, valid: jax.Array, forced: jax.Array, eps, rounds: int = 8) -> jax.Array:
    """Ramer-Douglas-Peucker on the valid points, in parallel over segments: each round keeps, in every
    segment between kept points, the farthest point if it is more than `eps` from the segment.
    `forced` points (and the first and last valid ones) are always kept."""
    n = points.shape[0]
    idx = jnp.arange(n)
    first, last = jnp.argmax(valid), n - 1 - jnp.argmax(valid[::-1])
    kept = valid & (forced | (idx == first) | (idx == last))

    def round_(_, kept):
        prev = jax.lax.cummax(jnp.where(kept, idx, -1))
        nxt = jax.lax.cummin(jnp.where(kept, idx, n), reverse=True)
        d = _segment_distance(points, points[jnp.clip(prev, 0, n - 1)], points[jnp.clip(nxt, 0, n - 1)])
        candidate = valid & ~kept & (prev >= 0) & (nxt < n) & (d > eps)
        score = jnp.where(candidate, d - idx * 1e-7, -jnp.inf)  # ties: the earliest point
        best = jax.ops.segment_max(score, jnp.clip(prev, 0, n - 1), num_segments=n)
        return kept | (candidate & (score == best[jnp.clip(prev, 0, n - 1)]))

    return jax.lax.fori_loop(0, rounds, round_, kept)


def expert_path(params: WorldParams, state_obs: jax.Array):
    """The labelled path from a state: (waypoints [MAX_WAYPOINTS, 2], gripper closed after each
    [MAX_WAYPOINTS], count); entries past `count` are zero."""
    obs = world.unpack(state_obs[:STATE_DIM])
    legs, used, grip_along, grip_end = _legs(params, obs)
    region_cell = cell_of(obs.region[:2])
    free = obs.free.at[region_cell[0], region_cell[1]].set(obs.free[region_cell[0], region_cell[1]] & (obs.region[2] <= 0))
    points, valid = jax.vmap(lambda leg: _leg(free, leg[0], leg[1]))(legs)
    n = points.shape[1]
    idx = jnp.arange(n)
    # a leg after the first starts where the previous ended: drop that repeated point
    valid = valid & used[:, None] & ((idx > 0) | (jnp.arange(LEGS) == 0)[:, None])
    count_per_leg = jnp.sum(valid, axis=1)
    last_of_leg = idx[None] == (jnp.argmax(jnp.cumsum(valid, axis=1) == count_per_leg[:, None], axis=1))[:, None]
    forced = valid & last_of_leg
    grip = jnp.where(last_of_leg, grip_end[:, None], grip_along[:, None]) & valid
    points, valid, forced, grip = (x.reshape(LEGS * n, *x.shape[2:]) for x in (points, valid, forced, grip))
    # the first eps of the ladder that leaves at most MAX_WAYPOINTS points (forced ones are <= LEGS + 1)
    ladder = RDP_EPS * jnp.array([1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 1e6])
    kept = jax.vmap(lambda e: rdp_keep(points, valid, forced, e))(ladder)
    kept = kept[jnp.argmax(kept.sum(1) <= MAX_WAYPOINTS)]
    order = jnp.argsort(~kept, stable=True)[:MAX_WAYPOINTS]
    count = jnp.minimum(kept.sum(), MAX_WAYPOINTS)
    mask = jnp.arange(MAX_WAYPOINTS) < count
    return jnp.where(mask[:, None], points[order], 0.0), jnp.where(mask, grip[order], False), count


def path_label(params: WorldParams, state_obs: jax.Array) -> jax.Array:
    """`expert_path` as one array [MAX_WAYPOINTS, 4]: x, y, gripper closed, valid (a dataset's `paths`)."""
    waypoints, grip, count = expert_path(params, state_obs)
    valid = jnp.arange(MAX_WAYPOINTS) < count
    return jnp.concatenate([waypoints, grip[:, None].astype(jnp.float32), valid[:, None].astype(jnp.float32)], axis=1)
