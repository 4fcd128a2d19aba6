"""HAMSTER's two levels: instructions, the high level's loss on a hand-made batch, decoding, image
coordinates, and a low-level policy that learns to follow straight paths by behaviour cloning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.pathworld import paths
from envs.pathworld.world import STATE_DIM
from jaxrl.agents.supervised import Supervised
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import replicate_agent, run_stage
from jaxrl.protocols import hierarchy
from jaxrl.protocols.hierarchy import PathPrediction


def test_instructions_encode_to_tokens_and_bad_ones_are_refused():
    np.testing.assert_array_equal(hierarchy.encode_instruction("pick-place green"), [2, 1, 3, 3])
    np.testing.assert_array_equal(hierarchy.encode_instruction("touch blue red green"), [3, 2, 0, 1])
    np.testing.assert_array_equal(hierarchy.encode_instruction("reach"), [0, 3, 3, 3])
    np.testing.assert_array_equal(hierarchy.encode_instruction("point red"), [5, 0, 3, 3])
    with pytest.raises(ValueError, match="unknown verb 'fly'"):
        hierarchy.encode_instruction("fly red")
    with pytest.raises(ValueError, match=r"unknown object\(s\) \['purple'\]"):
        hierarchy.encode_instruction("push purple")
    with pytest.raises(ValueError, match="touch names 3 distinct"):
        hierarchy.encode_instruction("touch red red blue")
    with pytest.raises(ValueError, match="unknown verb ''"):
        hierarchy.encode_instruction("")


def test_images_of_the_wrong_size_are_refused():
    hierarchy.check_images(np.zeros((4, 32, 32, 3)), 32)
    with pytest.raises(ValueError, match=r"must be \[\.\.\., 32, 32, 3\], got shape \(4, 64, 64, 3\)"):
        hierarchy.check_images(np.zeros((4, 64, 64, 3)), 32)
    with pytest.raises(ValueError, match="one of"):
        hierarchy.check_images(np.zeros((4, 48, 48, 3)), 48)


def test_path_loss_on_a_hand_made_batch():
    m = paths.MAX_WAYPOINTS
    target = np.zeros((1, m, 4), np.float32)
    target[0, :2] = [[0.2, 0.4, 0.0, 1.0], [0.6, 0.8, 1.0, 1.0]]  # two valid rows, the gripper closing at the second
    xy = np.full((1, m, 2), 0.5, np.float32)
    grip, valid = np.zeros((1, m), np.float32), np.zeros((1, m), np.float32)  # logits 0: every probability 1/2
    loss = hierarchy.path_loss(PathPrediction(jnp.asarray(xy), jnp.asarray(grip), jnp.asarray(valid)), jnp.asarray(target))
    squared = ((0.5 - 0.2) ** 2 + (0.5 - 0.4) ** 2 + (0.5 - 0.6) ** 2 + (0.5 - 0.8) ** 2) / 2  # mean over valid rows
    by_hand = np.log(2.0) + squared + np.log(2.0)  # valid CE (every row), xy, grip CE (valid rows)
    np.testing.assert_allclose(loss, by_hand, rtol=1e-6)
    # a confident, right prediction costs almost nothing
    sure = lambda flags: jnp.asarray(np.where(flags > 0.5, 20.0, -20.0))  # noqa: E731
    right = PathPrediction(jnp.asarray(target[..., :2]), sure(target[..., 2]), sure(target[..., 3]))
    assert float(hierarchy.path_loss(right, jnp.asarray(target))) < 1e-6


def test_decoded_paths_keep_valid_rows_first_and_at_least_one():
    xy = jnp.full((2, paths.MAX_WAYPOINTS, 2), 0.3)
    valid = jnp.array([[5.0, 5.0, -5.0, 5.0, -5.0, -5.0], [-5.0] * 6])  # a gap, then "valid" again; none valid
    path = np.asarray(PathPrediction(xy, jnp.zeros((2, 6)), valid).path())
    np.testing.assert_array_equal(path[0, :, 3], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(path[1, :, 3], [1, 0, 0, 0, 0, 0])
    assert paths.check_path(path[0]).shape == (paths.MAX_WAYPOINTS, 4)


def test_labels_follow_the_camera_into_image_coordinates():
    label = jnp.asarray(paths.check_path([[0.25, 0.5, 0, 1], [0.5, 0.75, 1, 1]]))
    np.testing.assert_allclose(hierarchy.label_in_image(label, hierarchy.IDENTITY), label)
    shifted = hierarchy.label_in_image(label, (0.1, -0.05, 0.0, 1.0))
    np.testing.assert_allclose(shifted[:2, :2], label[:2, :2] + jnp.array([0.1, -0.05]), atol=1e-6)
    turned = hierarchy.label_in_image(label, (0.0, 0.0, np.pi / 2, 1.0))  # a quarter turn about the centre
    np.testing.assert_allclose(turned[0, :2], [0.5, 0.25], atol=1e-6)
    np.testing.assert_array_equal(turned[:, 2:], label[:, 2:])


def straight_paths(rng, n):
    """Horizontal or vertical straight paths of 3 waypoints across the arena."""
    a = rng.uniform(0.2, 0.8, n)
    horizontal = rng.random(n) < 0.5
    start = np.where(horizontal[:, None], np.stack([np.full(n, 0.15), a], 1), np.stack([a, np.full(n, 0.15)], 1))
    end = np.where(horizontal[:, None], np.stack([np.full(n, 0.85), a], 1), np.stack([a, np.full(n, 0.85)], 1))
    path = np.zeros((n, paths.MAX_WAYPOINTS, 4), np.float32)
    for i, f in enumerate((0.0, 0.5, 1.0)):
        path[:, i, :2] = start + f * (end - start)
        path[:, i, 3] = 1.0
    return path, start, end


def follower(path, position):
    """The demonstrator: full speed towards the point 0.1 further along the path than the nearest one."""
    start, end = path[:, 0, :2], path[:, 2, :2]
    direction = (end - start) / np.linalg.norm(end - start, axis=-1, keepdims=True)
    along = np.sum((position - start) * direction, -1, keepdims=True)
    aim = start + np.clip(along + 0.1, 0.0, np.linalg.norm(end - start, axis=-1, keepdims=True)) * direction
    step = aim - position
    return np.clip(step / np.maximum(np.linalg.norm(step, axis=-1, keepdims=True), 0.1), -1, 1)


def test_low_level_bc_learns_to_follow_a_straight_path(tmp_path):
    """Behaviour cloning of the vector encoding on states scattered around straight paths; rolled out with
    a simple integrator (pos += 0.03 a), the policy runs from each path's start along it to its end."""
    rng = np.random.default_rng(0)
    n = 4096
    path, start, end = straight_paths(rng, n)
    f = rng.uniform(0, 1, (n, 1))
    position = start + f * (end - start) + rng.normal(0, 0.05, (n, 2))
    states = np.zeros((n, STATE_DIM), np.float32)
    states[:, :2] = position
    actions = np.concatenate([follower(path, position), np.zeros((n, 1))], -1).astype(np.float32)
    policy = hierarchy.PathPolicy("vector", hidden_dims=(128, 128), use_image=False)
    images = jnp.zeros((n, 32, 32, 3))
    data = {
        "state": hierarchy.proprio(jnp.asarray(states)),
        "image": images,
        "path": jnp.asarray(path),
        "action": jnp.asarray(actions),
    }

    def loss(params, batch):
        return jnp.mean((policy.apply(params, batch["state"], batch["image"], batch["path"]) - batch["action"]) ** 2)

    # through the trainer, as HAMSTER trains its models: a supervised agent in an offline phase
    init = lambda k: policy.init(k, data["state"][:1], images[:1], data["path"][:1])  # noqa: E731
    agents = replicate_agent(Supervised(init_params=init, loss=loss), 1)
    stage = run_stage(agents, [Offline(1500, 100, 256)], data, jax.random.PRNGKey(1)[None], tmp_path, {"test": "bc"})
    losses = [r["loss"] for r in stage.rows]
    assert losses[-1] < 0.2 * losses[0]
    params = jax.tree.map(lambda x: x[0], stage.states.agent.model.params)

    test_path, test_start, test_end = straight_paths(np.random.default_rng(1), 64)
    test_path = jnp.asarray(test_path)

    def rollout(position, _):
        state = jnp.zeros((64, hierarchy.PROPRIO_DIM)).at[:, :2].set(position)
        action = policy.apply(params, state, jnp.zeros((64, 32, 32, 3)), test_path)
        position = position + 0.03 * action[:, :2]
        return position, position

    final, visited = jax.lax.scan(rollout, jnp.asarray(test_start, jnp.float32), None, length=40)
    _, off_path = jax.vmap(paths.progress, in_axes=(0, 1))(test_path, visited)  # [paths, steps]
    assert float(jnp.max(off_path)) < 0.05  # every run stays on its line
    np.testing.assert_array_less(np.linalg.norm(np.asarray(final) - test_end, axis=-1), 0.06)  # and gets to its end


@pytest.mark.slow(
    reason="renders 32 scenes of 4 variants under a warped camera at 64 px (8-18 s)",
    companion="tests/test_hierarchy.py::test_labels_follow_the_camera_into_image_coordinates",
)
def test_pointing_labels_land_on_the_named_object_in_the_image_under_a_warped_camera():
    from envs.pathworld import render, suites

    variants = suites.suite("pretrain")[:4]
    stacked = jax.tree.map(
        lambda *xs: jnp.stack(xs), *[suites.variant_params(v, "camera-warp", palette=i) for i, v in enumerate(variants)]
    )
    params, states = hierarchy.reset_states(stacked, jax.random.PRNGKey(0), 8)
    assert states.shape == (32, STATE_DIM)
    examples = hierarchy.pointing_examples(params, states, 64, jax.random.PRNGKey(1))
    assert examples["image"].shape == (32, 64, 64, 3)
    checked = 0
    for image, tokens, path in zip(examples["image"], examples["tokens"], examples["path"], strict=True):
        x, y = np.asarray(path[0, :2])
        if not (0 <= x < 1 and 0 <= y < 1):  # the zoomed camera can put an object near the edge out of view
            continue
        checked += 1
        pixel = np.asarray(image)[int((1 - y) * 64), int(x * 64)]
        colour = np.asarray(render.OBJECT_COLOURS[int(tokens[1])])
        assert np.abs(pixel - colour).max() < 0.1 or np.allclose(pixel, render.AGENT_COLOUR)  # the agent may sit on it
    assert checked >= 24
    assert int(examples["tokens"][0, 0]) == hierarchy.VERBS.index("point")
    tasks = hierarchy.path_examples(params, states, 32)
    assert tasks["path"].shape == (32, paths.MAX_WAYPOINTS, 4) and bool(jnp.all(tasks["path"][:, 0, 3] == 1))


def test_the_conv_encoders_patches_compute_a_stride_2_same_convolution():
    from jaxrl.agents.networks import stride2_patches

    for size in (32, 6):
        x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 5))
        kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 5, 7))
        expected = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        np.testing.assert_allclose(stride2_patches(x) @ kernel.reshape(45, 7), expected, atol=1e-4)


def test_spatial_softmax_reports_where_each_channel_fires():
    from jaxrl.agents.networks import spatial_softmax

    maps = jnp.full((1, 4, 4, 2), -50.0).at[0, 0, 3, 0].set(50.0).at[0, 3, 0, 1].set(50.0)  # top right; bottom left
    np.testing.assert_allclose(spatial_softmax(maps), [[0.875, 0.125, 0.875, 0.125]], atol=1e-6)  # x of each, then y


def test_the_vector_encoding_measures_progress_where_the_camera_shows_the_agent():
    """Paths live in image coordinates; under a warped camera the agent's arena position is elsewhere in
    the image, so progress is taken at its image position when one is given (the evaluation gives it)."""
    from envs.pathworld.render import image_coordinates

    path = jnp.zeros((1, paths.MAX_WAYPOINTS, 4)).at[0, :2].set(jnp.array([[0.2, 0.5, 0, 1], [0.8, 0.5, 0, 1]]))
    arena = jnp.array([[0.3, 0.5]])
    seen = image_coordinates(arena, (0.1, 0.0, 0.0, 1.0))  # the camera shifted right by 0.1
    proprio = jnp.zeros((1, hierarchy.PROPRIO_DIM)).at[:, :2].set(arena)
    _, plain = hierarchy.encode_path("vector", proprio, None, path)
    _, warped = hierarchy.encode_path("vector", proprio, None, path, position=seen)
    np.testing.assert_allclose(plain[0, -1], 1 / 6, atol=1e-6)  # 0.1 of the path's 0.6 length
    np.testing.assert_allclose(warped[0, -1], 2 / 6, atol=1e-6)  # the image shows it 0.1 further along
