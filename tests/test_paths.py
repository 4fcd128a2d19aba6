"""Path encodings for path-conditioned policies: drawn pixels by hand, the camera, progress, Fréchet distance,
and bad paths."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from envs.pathworld import paths

# (0.25, 0.5) -> (0.75, 0.5), the gripper closing at the end; padded to MAX_WAYPOINTS rows
LINE = paths.check_path([[0.25, 0.5, 0.0, 1.0], [0.75, 0.5, 1.0, 1.0]])


def test_a_straight_path_lights_exactly_the_pixels_within_the_line_width():
    # 16 px: pixel centres at (c + 0.5) / 16, y = 1 - (r + 0.5) / 16. Rows 7 and 8 are 1/32 from y = 0.5
    # (<= 0.035), row 6 and 9 3/32; columns 4..11 lie over the segment, 3 and 12 are 0.044 from its ends.
    channels = np.asarray(paths.path_channels(jnp.asarray(LINE), 16))
    expected = np.zeros((16, 16), bool)
    expected[7:9, 4:12] = True
    np.testing.assert_array_equal(channels[..., 0] > 0, expected)
    x = (np.arange(4, 12) + 0.5) / 16
    np.testing.assert_allclose(channels[7, 4:12, 0], 0.25 + 0.75 * (x - 0.25) / 0.5, rtol=1e-5)
    # the grip event at (0.75, 0.5): the four pixel centres within 0.05 of it
    events = np.zeros((16, 16), bool)
    events[7:9, 11:13] = True
    np.testing.assert_array_equal(channels[..., 1] > 0, events)


def test_the_overlay_colours_the_line_and_leaves_the_rest_of_the_image():
    image = jnp.full((16, 16, 3), 0.5)
    drawn = np.asarray(paths.draw_path(image, jnp.asarray(LINE)))
    np.testing.assert_allclose(drawn[7, 4], 0.9375 * paths.START_COLOUR + 0.0625 * paths.END_COLOUR, rtol=1e-5)
    np.testing.assert_allclose(drawn[8, 12], paths.EVENT_COLOUR)  # event disc, off the line
    untouched = np.ones((16, 16), bool)
    untouched[7:9, 4:13] = False
    np.testing.assert_array_equal(drawn[untouched], 0.5)


def test_a_camera_shift_moves_the_drawing_with_the_scene():
    plain = np.asarray(paths.path_channels(jnp.asarray(LINE), 16))
    shifted = np.asarray(paths.path_channels(jnp.asarray(LINE), 16, warp=(0.25, 0.0, 0.0, 1.0)))
    np.testing.assert_array_equal(shifted[:, 4:], plain[:, :-4])  # a quarter of the image: 4 columns right


def test_progress_and_the_path_vector():
    along, dist = paths.progress(jnp.asarray(LINE), jnp.array([[0.5, 0.6], [0.0, 0.5], [0.9, 0.5]]))
    np.testing.assert_allclose(along, [0.5, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(dist, [0.1, 0.25, 0.15], atol=1e-6)
    bent = paths.check_path([[0.0, 0.0, 0, 1], [1.0, 0.0, 0, 1], [1.0, 1.0, 0, 1]])
    along, _ = paths.progress(jnp.asarray(bent), jnp.array([1.0, 0.5]))
    np.testing.assert_allclose(along, 0.75, atol=1e-6)  # 1.5 of 2 length units
    vector = paths.path_vector(jnp.asarray(LINE), jnp.array([0.5, 0.5]))
    assert vector.shape == (paths.MAX_WAYPOINTS * 4 + 1,)
    np.testing.assert_allclose(vector[-1], 0.5, atol=1e-6)
    np.testing.assert_array_equal(vector[:-1], LINE.reshape(-1))


def test_the_lookahead_gives_the_path_ahead_of_the_agent_and_its_next_grip_event():
    bent = jnp.asarray(paths.check_path([[0.0, 0.0, 0, 1], [1.0, 0.0, 0, 1], [1.0, 1.0, 1, 1]]))
    np.testing.assert_allclose(paths.point_at(bent, 1.5), [1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(paths.point_at(bent, 9.0), [1.0, 1.0], atol=1e-6)  # clipped to the end
    position = jnp.array([0.9, 0.1])  # nearest path point (0.9, 0), 0.9 along it, 0.1 off it
    features = np.asarray(paths.path_lookahead(bent, position))
    k = paths.MAX_WAYPOINTS * 4 + 1
    np.testing.assert_array_equal(features[:k], paths.path_vector(bent, position))
    ahead = features[k : k + 2 * len(paths.LOOKAHEAD)].reshape(-1, 2) / paths.FEATURE_SCALE
    expected = [[0.9 + d, 0.0] if 0.9 + d <= 1.0 else [1.0, 0.9 + d - 1.0] for d in paths.LOOKAHEAD]
    np.testing.assert_allclose(ahead, np.asarray(expected) - [0.9, 0.1], atol=1e-5)
    dist, left, ex, ey, has, closes, to_event = features[k + 2 * len(paths.LOOKAHEAD) :]
    np.testing.assert_allclose([dist / paths.FEATURE_SCALE, left], [0.1, 1.1], atol=1e-5)
    # the grip closes at the last waypoint (1, 1): 1.1 ahead, at (+0.1, +0.9) from the agent
    np.testing.assert_allclose([ex / paths.FEATURE_SCALE, ey / paths.FEATURE_SCALE, has, closes, to_event],
                               [0.1, 0.9, 1.0, 1.0, 1.1], atol=1e-5)  # fmt: skip
    # past the only event (the gripper closes at the start): none ahead
    closed = jnp.asarray(paths.check_path([[0.0, 0.0, 1, 1], [1.0, 0.0, 1, 1]]))
    none = np.asarray(paths.path_lookahead(closed, jnp.array([0.5, 0.0])))[-5:]
    np.testing.assert_allclose(none, 0.0, atol=1e-6)


def test_frechet_distance_by_hand():
    p = lambda *pts: jnp.asarray(paths.check_path([[x, y, 0, 1] for x, y in pts]))  # noqa: E731
    assert float(paths.frechet_distance(p((0, 0), (1, 0)), p((0, 1), (1, 1)))) == pytest.approx(1.0)
    assert float(paths.frechet_distance(p((0, 0), (0.5, 0), (1, 0)), p((0, 0), (1, 0)))) == pytest.approx(0.5)
    assert float(paths.frechet_distance(p((0, 0), (1, 0)), p((0, 0), (0.5, 0), (1, 0)))) == pytest.approx(0.5)
    # the order matters (unlike the Hausdorff distance): a reversed path is as far as its ends
    assert float(paths.frechet_distance(p((0, 0), (1, 0)), p((1, 0), (0, 0)))) == pytest.approx(1.0)
    assert float(paths.frechet_distance(p((0.2, 0.3), (0.6, 0.1)), p((0.2, 0.3), (0.6, 0.1)))) == 0.0


def test_bad_paths_are_refused():
    with pytest.raises(ValueError, match="no waypoints"):
        paths.check_path([[0.5, 0.5, 0, 0]])
    with pytest.raises(ValueError, match="shape"):
        paths.check_path(np.zeros((7, 4)))
    with pytest.raises(ValueError, match="valid rows must come first"):
        paths.check_path([[0.5, 0.5, 0, 0], [0.2, 0.2, 0, 1]])
    with pytest.raises(ValueError, match="non-finite"):
        paths.check_path([[np.nan, 0.5, 0, 1]])
