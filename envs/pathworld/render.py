"""Top-down RGB images of PathWorld, rasterised with jnp under jit (one pixel-centre test per layer).

Layers, bottom first: floor and walls (textured), the avoid region (blended), the goal, the objects,
the agent, and a held object drawn small on top of the agent. A palette seed is a visual domain: it
draws the floor and wall colours, the texture, and small shifts of the object colours (each object
keeps its hue, so "the red object" means the same in every domain). The camera warp (shift, rotation,
zoom about the arena's centre) moves pixels, never states; what falls outside the arena is black.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.pathworld.layout import cell_of
from envs.pathworld.world import OBJECT_RADIUS, StateObs

IMAGE_SIZES = (32, 64)
GOAL_RADIUS = 0.045
TEXTURE = 16  # texture cells per arena side
OBJECT_COLOURS = jnp.array([[0.9, 0.15, 0.15], [0.15, 0.75, 0.2], [0.2, 0.3, 0.95]])
AGENT_COLOUR = jnp.array([0.98, 0.85, 0.1])
GOAL_COLOUR = jnp.array([0.85, 0.2, 0.85])
REGION_COLOUR = jnp.array([1.0, 0.5, 0.0])


def palette_colours(palette) -> dict[str, jax.Array]:
    """The colours and texture of a visual domain."""
    k_floor, k_wall, k_obj, k_tex = jax.random.split(jax.random.PRNGKey(palette), 4)
    return {
        "floor": jax.random.uniform(k_floor, (3,), minval=0.55, maxval=0.85),
        "wall": jax.random.uniform(k_wall, (3,), minval=0.1, maxval=0.35),
        "objects": jnp.clip(OBJECT_COLOURS + jax.random.uniform(k_obj, OBJECT_COLOURS.shape, minval=-0.08, maxval=0.08), 0, 1),
        "texture": jax.random.uniform(k_tex, (TEXTURE, TEXTURE), minval=-0.08, maxval=0.08),
    }


def pixel_world(size: int, warp) -> jax.Array:
    """The arena point each pixel's centre shows, [size, size, 2]; row 0 is the top (y = 1)."""
    idx = (jnp.arange(size) + 0.5) / size
    q = jnp.stack(jnp.meshgrid(idx, 1.0 - idx, indexing="xy"), axis=-1)  # [row, col] -> (x, y)
    shift, angle, zoom = jnp.asarray(warp[:2]), warp[2], warp[3]
    c, s = jnp.cos(angle), jnp.sin(angle)
    unrotate = jnp.array([[c, s], [-s, c]])  # R(-angle)
    return 0.5 + ((q - 0.5 - shift) / zoom) @ unrotate.T


def image_coordinates(points: jax.Array, warp) -> jax.Array:
    """Where arena points [..., 2] appear in the image, as (x right, y up) in [0, 1]^2 of the image: the
    inverse of `pixel_world` before pixels (a path a model reads off the image lives here)."""
    shift, angle, zoom = jnp.asarray(warp[:2]), warp[2], warp[3]
    c, s = jnp.cos(angle), jnp.sin(angle)
    return 0.5 + shift + zoom * ((points - 0.5) @ jnp.array([[c, -s], [s, c]]).T)


def world_pixel(point: jax.Array, size: int, warp) -> jax.Array:
    """The (row, col) pixel that shows an arena point: the inverse of `pixel_world`."""
    q = image_coordinates(point, warp)
    return jnp.floor(jnp.array([(1.0 - q[1]) * size, q[0] * size])).astype(jnp.int32)


def render(obs: StateObs, palette=0, warp=(0.0, 0.0, 0.0, 1.0), size: int = 32, radius=0.04) -> jax.Array:
    """The image [size, size, 3] in [0, 1] of one state (`world.unpack` of a state observation)."""
    colours = palette_colours(palette)
    p = pixel_world(size, warp)
    inside = jnp.all((p >= 0.0) & (p <= 1.0), axis=-1)
    cell = cell_of(p)
    free = obs.free[cell[..., 0], cell[..., 1]]
    tex = jnp.clip(jnp.floor(p * TEXTURE).astype(jnp.int32), 0, TEXTURE - 1)
    shade = 1.0 + colours["texture"][tex[..., 0], tex[..., 1]]
    image = jnp.where(free[..., None], colours["floor"], colours["wall"]) * shade[..., None]

    def disc(centre, r):
        return jnp.sum((p - centre) ** 2, axis=-1) < r**2

    region = disc(obs.region[:2], obs.region[2])[..., None]
    image = jnp.where(region, 0.5 * image + 0.5 * REGION_COLOUR, image)
    image = jnp.where(disc(obs.goal, GOAL_RADIUS)[..., None], GOAL_COLOUR, image)
    held = obs.held > 0.5
    for j in range(obs.objects.shape[0]):
        visible = disc(obs.objects[j], OBJECT_RADIUS) & ~held[j]
        image = jnp.where(visible[..., None], colours["objects"][j], image)
    image = jnp.where(disc(obs.pos, radius)[..., None], AGENT_COLOUR, image)
    carried = jnp.any(held)
    carried_colour = held.astype(jnp.float32) @ colours["objects"]
    image = jnp.where((disc(obs.pos, 0.6 * radius) & carried)[..., None], carried_colour, image)
    return jnp.clip(jnp.where(inside[..., None], image, 0.0), 0.0, 1.0)
