"""Coarse 2-D paths (HAMSTER, Li et al. 2025): the ways a low-level policy reads one, and how close two are.

A path is [MAX_WAYPOINTS, 4] rows of (x, y, gripper closed after this point, valid) in arena coordinates
([0, 1]^2), valid rows first (`expert.path_label`'s layout). Three encodings for a path-conditioned policy:
- `draw_path`: drawn over the RGB image as a polyline whose colour ramps from start to end, with discs
  where the gripper changes (HAMSTER's `gradio_server_example.py:55-120` draws a jet ramp and circles);
- `path_channels`: the same drawing in two separate channels (progress along the path, grip events), to
  concatenate with the image (HAMSTER's RVT-2 "concat" variant);
- `path_vector`: the waypoints as a vector, plus the progress of a position along the path;
- `path_lookahead`: that, plus the path ahead of the agent relative to it and its next grip event (ours).
Drawing goes through the camera (`render.pixel_world`), so a warped camera warps the drawn path with the scene.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.pathworld.expert import MAX_WAYPOINTS
from envs.pathworld.render import pixel_world

LINE_WIDTH = 0.035  # half-width of the drawn line, arena units (about a pixel at 32 px)
EVENT_RADIUS = 0.05
START_COLOUR = jnp.array([0.0, 0.2, 1.0])  # the ramp runs blue -> red, as the start and end of a jet map
END_COLOUR = jnp.array([1.0, 0.1, 0.0])
EVENT_COLOUR = jnp.array([1.0, 1.0, 1.0])


def check_path(path) -> np.ndarray:
    """A host-side check of a path given by a user: shape [n <= MAX_WAYPOINTS, 4] (padded to MAX_WAYPOINTS),
    at least one valid waypoint, valid rows first, coordinates finite."""
    path = np.asarray(path, np.float32)
    if path.ndim != 2 or path.shape[1] != 4 or not 1 <= path.shape[0] <= MAX_WAYPOINTS:
        raise ValueError(f"a path is [n <= {MAX_WAYPOINTS}, 4] rows of (x, y, grip, valid), got shape {path.shape}")
    valid = path[:, 3] > 0.5
    if not valid.any():
        raise ValueError("the path has no waypoints (no row is valid)")
    if valid[np.argmin(valid) :].any() and not valid.all():
        raise ValueError(f"the path's valid rows must come first, got valid flags {valid.astype(int).tolist()}")
    if not np.isfinite(path[valid, :2]).all():
        raise ValueError("the path has a non-finite waypoint coordinate")
    return np.concatenate([path, np.zeros((MAX_WAYPOINTS - len(path), 4), np.float32)])


def _segments(path):
    """Segment starts and ends [M-1, 2] and which are drawn (both ends valid); a one-point path draws
    its single point as a zero-length segment."""
    points, valid = path[:, :2], path[:, 3] > 0.5
    single = jnp.sum(valid) == 1
    starts, ends = points[:-1], jnp.where(single, points[:1], points[1:])
    drawn = (valid[:-1] & valid[1:]) | (single & (jnp.arange(MAX_WAYPOINTS - 1) == 0))
    return starts, ends, drawn


def _project(p, a, b):
    """Distance of points p [..., 2] to segment a-b, and the fraction t in [0, 1] along it of the nearest point."""
    ab = b - a
    t = jnp.clip(jnp.sum((p - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab), 1e-12), 0.0, 1.0)
    return jnp.linalg.norm(p - (a + t[..., None] * ab), axis=-1), t


def progress(path, points):
    """Progress in [0, 1] along the path (arc length of the nearest point on it / total length) of points
    [..., 2], and their distance to the path."""
    starts, ends, drawn = _segments(path)
    lengths = jnp.where(drawn, jnp.linalg.norm(ends - starts, axis=-1), 0.0)
    before = jnp.cumsum(lengths) - lengths
    dist, t = jax.vmap(lambda a, b: _project(points, a, b), out_axes=-1)(starts, ends)  # [..., M-1]
    dist = jnp.where(drawn, dist, jnp.inf)
    nearest = jnp.argmin(dist, axis=-1)
    along = jnp.take_along_axis(before + t * lengths, nearest[..., None], -1)[..., 0]
    return along / jnp.maximum(jnp.sum(lengths), 1e-12), jnp.min(dist, axis=-1)


def _events(path):
    """The waypoints where the gripper changes (against the state before it: open at the start)."""
    grip, valid = path[:, 2] > 0.5, path[:, 3] > 0.5
    before = jnp.concatenate([jnp.zeros(1, bool), grip[:-1]])
    return valid & (grip != before)


def path_channels(path, size: int, warp=(0.0, 0.0, 0.0, 1.0)) -> jax.Array:
    """[size, size, 2]: channel 0 is 0 off the line and 0.25 + 0.75 * progress on it (so the start is
    visible and the direction readable); channel 1 is 1 inside a disc at each grip event."""
    pixels = pixel_world(size, warp)
    along, dist = progress(path, pixels)
    line = jnp.where(dist <= LINE_WIDTH, 0.25 + 0.75 * along, 0.0)
    to_event = jnp.linalg.norm(pixels[:, :, None] - path[None, None, :, :2], axis=-1)
    event = jnp.any((to_event <= EVENT_RADIUS) & _events(path)[None, None], axis=-1)
    return jnp.stack([line, event.astype(jnp.float32)], axis=-1)


def draw_path(image, path, warp=(0.0, 0.0, 0.0, 1.0)) -> jax.Array:
    """The image [size, size, 3] with the path drawn over it: the line's colour ramps from START to END
    colour along the path, grip events are white discs under it."""
    return overlay(image, path_channels(path, image.shape[0], warp))


def overlay(image, channels) -> jax.Array:
    """`draw_path` from the path's `path_channels` (so a drawing computed once serves every frame)."""
    on_line = channels[..., :1] > 0
    ramp = (channels[..., :1] - 0.25) / 0.75
    colour = (1.0 - ramp) * START_COLOUR + ramp * END_COLOUR
    image = jnp.where(channels[..., 1:] > 0, EVENT_COLOUR, image)
    return jnp.where(on_line, colour, image)


def path_vector(path, position) -> jax.Array:
    """[MAX_WAYPOINTS * 4 + 1]: the path's rows flattened, then the position's progress along it."""
    along, _ = progress(path, position)
    return jnp.concatenate([path.reshape(-1), along[None]])


LOOKAHEAD = (0.0, 0.03, 0.06, 0.12, 0.24)  # arc lengths ahead of the agent's nearest path point (path units)
FEATURE_SCALE = 10.0  # offsets of a few hundredths, scaled to about unit size for a network


def point_at(path, s) -> jax.Array:
    """The point at arc length `s` along the path (clipped to its ends)."""
    starts, ends, drawn = _segments(path)
    lengths = jnp.where(drawn, jnp.linalg.norm(ends - starts, axis=-1), 0.0)
    before = jnp.cumsum(lengths) - lengths
    s = jnp.clip(s, 0.0, jnp.sum(lengths))
    segment = jnp.clip(jnp.sum((before <= s) & drawn) - 1, 0, starts.shape[0] - 1)
    t = jnp.clip((s - before[segment]) / jnp.maximum(lengths[segment], 1e-9), 0.0, 1.0)
    return starts[segment] + t * (ends[segment] - starts[segment])


def path_lookahead(path, position) -> jax.Array:
    """[MAX_WAYPOINTS * 4 + 1 + 2 * len(LOOKAHEAD) + 2 + 5]: `path_vector`, then what following the path
    from `position` needs, relative to it: the points LOOKAHEAD ahead along the path of the nearest one,
    the distance to the path and the length left; the next grip event ahead (its offset, whether there is
    one, whether it closes the gripper, the length to it). Regressing an action from the absolute
    waypoints alone leaves a network to find its place on the path; measured on PathWorld (2026-12-07,
    3,000 demos, privileged state, 8,000 updates), oracle-path success 0.23 with `path_vector`, 0.51 with this."""
    starts, ends, drawn = _segments(path)
    lengths = jnp.where(drawn, jnp.linalg.norm(ends - starts, axis=-1), 0.0)
    total = jnp.sum(lengths)
    along, dist = progress(path, position)
    here = along * total
    ahead = jnp.stack([point_at(path, here + d) - position for d in LOOKAHEAD]).reshape(-1)
    at = jnp.concatenate([jnp.zeros(1), jnp.cumsum(lengths)])  # arc length at each waypoint
    coming = _events(path) & (at >= here - 1e-3)
    has, first = coming.any(), jnp.argmax(coming)
    event = jnp.where(has, path[first, :2] - position, 0.0)
    return jnp.concatenate([
        path_vector(path, position),
        FEATURE_SCALE * ahead,
        jnp.stack([FEATURE_SCALE * dist, total - here]),
        FEATURE_SCALE * event,
        jnp.stack([has.astype(jnp.float32), path[first, 2] * has, jnp.where(has, at[first] - here, 0.0)]),
    ])  # fmt: skip


def frechet_distance(path_a, path_b) -> jax.Array:
    """The discrete Fréchet distance between two paths' valid waypoints (the coupling distance of the
    vertex sequences; Eiter and Mannila 1994), by dynamic programming over the padded [M, M] grid."""
    a, b = path_a[:, :2], path_b[:, :2]
    na, nb = jnp.sum(path_a[:, 3] > 0.5), jnp.sum(path_b[:, 3] > 0.5)
    d = jnp.linalg.norm(a[:, None] - b[None], axis=-1)
    m = MAX_WAYPOINTS
    ca = jnp.full((m, m), jnp.inf)
    for i in range(m):
        for j in range(m):
            if i == 0 and j == 0:
                prev = jnp.asarray(0.0)
            else:
                options = []
                if i > 0:
                    options.append(ca[i - 1, j])
                if j > 0:
                    options.append(ca[i, j - 1])
                if i > 0 and j > 0:
                    options.append(ca[i - 1, j - 1])
                prev = jnp.min(jnp.stack(options))
            ca = ca.at[i, j].set(jnp.maximum(prev, d[i, j]))
    return ca[jnp.maximum(na, 1) - 1, jnp.maximum(nb, 1) - 1]
