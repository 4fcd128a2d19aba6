"""Arena layouts: an occupancy grid that is a pure function of a seed, and distances on it.

The arena is the unit square split into GRID x GRID cells; a cell is a wall or free. A layout is a few
random wall segments (rooms and corridors), of which only the largest connected free region is kept
free, so every free cell is reachable from every other. Everything here is jittable and vmappable;
distances are breadth-first distance fields computed by relaxation (GRID * GRID sweeps bound the
longest shortest path).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GRID = 8
CELL = 1.0 / GRID
CELLS = GRID * GRID
UNREACHABLE = CELLS  # a distance no path on the grid reaches
MOVES = jnp.array([[0, 1], [0, -1], [1, 0], [-1, 0]])  # (dx, dy) in cells: the 4-neighbourhood


def generate(seed) -> jax.Array:
    """The layout of `seed`: bool[GRID, GRID] indexed [x, y], True where a cell is free."""
    key = jax.random.PRNGKey(seed)
    k_n, k_seg = jax.random.split(key)
    segments = 6
    n = jax.random.randint(k_n, (), 3, segments + 1)
    k_start, k_dir, k_len = jax.random.split(k_seg, 3)
    start = jax.random.randint(k_start, (segments, 2), 0, GRID)
    horizontal = jax.random.bernoulli(k_dir, 0.5, (segments,))
    length = jax.random.randint(k_len, (segments,), 2, 6)
    xs, ys = jnp.meshgrid(jnp.arange(GRID), jnp.arange(GRID), indexing="ij")

    def segment_cells(s, d, length, on):
        along, across = jnp.where(d, xs, ys), jnp.where(d, ys, xs)
        s_along, s_across = jnp.where(d, s[0], s[1]), jnp.where(d, s[1], s[0])
        return on & (across == s_across) & (along >= s_along) & (along < s_along + length)

    walls = jax.vmap(segment_cells)(start, horizontal, length, jnp.arange(segments) < n).any(0)
    return largest_region(~walls)


def _neighbours(field: jax.Array, fill) -> jax.Array:
    """field of each cell's 4 neighbours, [4, GRID, GRID] in MOVES order; `fill` beyond the arena."""
    padded = jnp.pad(field, 1, constant_values=fill)
    return jnp.stack([padded[1 + dx : 1 + dx + GRID, 1 + dy : 1 + dy + GRID] for dx, dy in MOVES.tolist()])


def largest_region(free: jax.Array) -> jax.Array:
    """Only the largest 4-connected region of `free` stays free (ties: the one with the lowest cell)."""
    label = jnp.where(free, jnp.arange(CELLS).reshape(GRID, GRID), CELLS)

    def spread(_, label):
        return jnp.where(free, jnp.minimum(label, _neighbours(label, CELLS).min(0)), CELLS)

    label = fixed_point(spread, label)
    sizes = jnp.zeros(CELLS + 1, jnp.int32).at[label.ravel()].add(1)[:CELLS]
    return free & (label == jnp.argmax(sizes))


def distance_field(free: jax.Array, target: jax.Array, pushable: bool = False) -> jax.Array:
    """Steps from every cell to cell `target` ([x, y]) through free cells; UNREACHABLE where none.

    With `pushable`, a step from c to its neighbour c + d also needs c - d free: the cell an agent must
    stand in to push an object from c towards c + d.
    """
    start = jnp.zeros((GRID, GRID), jnp.int32).at[target[0], target[1]].set(1) > 0
    dist = jnp.where(start & free[target[0], target[1]], 0, UNREACHABLE)
    behind_free = _neighbours(free, False)[jnp.array([1, 0, 3, 2])]  # the opposite neighbour of each move

    def relax(_, dist):
        step = _neighbours(dist, UNREACHABLE) + 1
        if pushable:
            step = jnp.where(behind_free, step, UNREACHABLE)
        return jnp.where(free, jnp.minimum(dist, step.min(0)), UNREACHABLE)

    return fixed_point(relax, dist)


def push_reachable(free: jax.Array, start: jax.Array) -> jax.Array:
    """bool[GRID, GRID]: the cells an object in cell `start` can be pushed to (each push from c to c + d
    needs c - d free for the pusher)."""
    reach = jnp.zeros((GRID, GRID), bool).at[start[0], start[1]].set(True) & free
    padded_free = jnp.pad(free, 2, constant_values=False)

    def spread(_, reach):
        padded = jnp.pad(reach, 1, constant_values=False)
        arrivals = []
        for dx, dy in MOVES.tolist():  # arriving at x by the move (dx, dy): from x - d, pushed from x - 2d
            came_from = padded[1 - dx : 1 - dx + GRID, 1 - dy : 1 - dy + GRID]
            pusher = padded_free[2 - 2 * dx : 2 - 2 * dx + GRID, 2 - 2 * dy : 2 - 2 * dy + GRID]
            arrivals.append(came_from & pusher)
        return reach | (jnp.stack(arrivals).any(0) & free)

    return fixed_point(spread, reach)


def fixed_point(update, x):
    """Apply `update(i, x)` until x stops changing (at most CELLS times: a grid path's longest)."""

    def cond(carry):
        i, x, changed = carry
        return changed & (i < CELLS)

    def body(carry):
        i, x, _ = carry
        new = update(i, x)
        return i + 1, new, jnp.any(new != x)

    return jax.lax.while_loop(cond, body, (0, x, True))[1]


def cell_of(pos: jax.Array) -> jax.Array:
    """The [x, y] cell of a point of the arena."""
    return jnp.clip(jnp.floor(pos / CELL).astype(jnp.int32), 0, GRID - 1)


def cell_center(cell: jax.Array) -> jax.Array:
    return (cell.astype(jnp.float32) + 0.5) * CELL


def next_cell(dist: jax.Array, cell: jax.Array) -> jax.Array:
    """The neighbour of `cell` one step closer along `dist` (`cell` itself at the target)."""
    candidates = cell + MOVES
    inside = jnp.all((candidates >= 0) & (candidates < GRID), axis=1)
    c = jnp.clip(candidates, 0, GRID - 1)
    d = jnp.where(inside, dist[c[:, 0], c[:, 1]], UNREACHABLE + 1)
    best = jnp.argmin(d)
    return jnp.where(d[best] < dist[cell[0], cell[1]], c[best], cell)


def route(dist: jax.Array, start: jax.Array, length: int = CELLS) -> jax.Array:
    """The cells from `start` down `dist` to its target, [length, 2], repeating the last once there."""

    def step(cell, _):
        nxt = next_cell(dist, cell)
        return nxt, cell

    _, cells = jax.lax.scan(step, start, None, length=length)
    return cells
