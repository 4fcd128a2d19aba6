"""HAMSTER's comparison protocol: which data each split and each model sees, the data it generates, the
metrics and claims by hand, and a tiny end-to-end run (every method starts from the same states; oracle
paths have Frechet distance 0)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.pathworld import paths, suites
from envs.pathworld.layout import generate
from envs.pathworld.render import render
from envs.pathworld.world import TASKS, unpack
from jaxrl.agents import ConfigError
from jaxrl.protocols import hamster, hierarchy
from jaxrl.protocols import hamster_report as report

TINY = hamster.HamsterConfig(demo_episodes=12, offdomain_paths=48, pointing=16, offdomain_episodes=6, channels=(4, 8),
                             hidden_dims=(32,), batch_size=16, high_steps=30, low_steps=30, eval_episodes=4, seeds=2,
                             methods=("hamster", "oracle-path", "flat"), splits=("in-domain", "camera"))  # fmt: skip


def test_evaluation_splits_use_only_their_layouts_and_no_training_data_shares_them():
    rng = np.random.default_rng(0)
    held_out_layouts = set(suites.split("unseen-layouts").layouts)
    training = set(hamster.IN_DOMAIN.layouts) | set(hamster.OFF_DOMAIN.layouts)
    assert not training & held_out_layouts
    for name in hamster.HELD_OUT:
        domain = hamster.SPLITS[name]
        v = hamster.sample_variants(domain, TINY.tasks, 16, rng)
        assert set(v.layouts) <= set(domain.layouts) and set(v.layouts) <= held_out_layouts, name
        assert set(v.palettes) <= set(domain.palettes), name
        for i in (0, 7):  # the params carry the layout they name
            np.testing.assert_array_equal(v.params.free[i], generate(int(v.layouts[i])))
    unseen_palettes = set(hamster.SPLITS["palettes"].palettes)
    assert not unseen_palettes & (set(hamster.IN_DOMAIN.palettes) | set(hamster.OFF_DOMAIN.palettes))
    camera = hamster.sample_variants(hamster.SPLITS["camera"], TINY.tasks, 4, rng)
    np.testing.assert_allclose(camera.params.warp, np.tile(suites.split("camera-warp").warp, (4, 1)))
    off = hamster.sample_variants(hamster.OFF_DOMAIN, TINY.tasks, 256, rng)
    assert not np.any(np.all(np.isclose(np.asarray(off.params.warp), suites.split("camera-warp").warp), axis=1))
    np.testing.assert_allclose(off.params.gain, 1.5 * suites.DEFAULT_PHYSICS["gain"])


def test_unseen_object_task_combinations_are_never_in_the_demos():
    rng = np.random.default_rng(1)
    demos = hamster.sample_variants(hamster.IN_DOMAIN, TINY.tasks, 512, rng).params
    combos = hamster.sample_variants(hamster.SPLITS["combos"], TINY.tasks, 64, rng).params

    def pairs(p):
        task = np.asarray(p.task)
        orders = [hamster.ORDERS.index(tuple(o)) for o in np.asarray(p.order)]
        return {("pick-place", int(t)) for t, k in zip(np.asarray(p.target), task, strict=True) if TASKS[k] == "pick-place"} | {
            ("touch", o) for o, k in zip(orders, task, strict=True) if TASKS[k] == "touch"
        }

    assert {TASKS[k] for k in np.asarray(combos.task)} <= set(hamster.COMBO_TASKS)
    assert pairs(combos) and not pairs(combos) & pairs(demos)


def test_channels_overlay_and_vector_encodings_round_trip():
    path = jnp.asarray(paths.check_path([[0.2, 0.2, 0, 1], [0.8, 0.2, 1, 1], [0.8, 0.8, 0, 1]]))
    image = jnp.full((32, 32, 3), 0.5)
    channels = paths.path_channels(path, 32)
    np.testing.assert_array_equal(paths.overlay(image, channels), paths.draw_path(image, path))
    vector = paths.path_vector(path, jnp.array([0.8, 0.2]))
    np.testing.assert_array_equal(vector[:-1].reshape(paths.MAX_WAYPOINTS, 4), path)
    assert abs(float(vector[-1]) - 0.5) < 1e-6  # the second waypoint is half way along
    # the lit pixels decode back to points on the path, their progress rising along it
    rows, cols = np.nonzero(np.asarray(channels[..., 0]) > 0)
    points = np.stack([(cols + 0.5) / 32, 1 - (rows + 0.5) / 32], axis=1)
    along, dist = paths.progress(path, jnp.asarray(points))
    assert float(dist.max()) <= paths.LINE_WIDTH + 1e-6
    np.testing.assert_allclose(np.asarray(channels[..., 0])[rows, cols], 0.25 + 0.75 * np.asarray(along), atol=1e-6)


def test_failure_attribution_by_hand():
    success = np.array([True, False, False, False, False])
    frechet = np.array([0.5, 0.5, 0.05, 0.05, 0.05])  # the first failure has a bad path
    adherence = np.array([0.0, 0.0, 0.2, 0.01, 0.02])  # the second strays; the last two follow and fail
    a = hamster.attribution(success, frechet, adherence)
    assert a["failures"] == 4
    assert (a["bad path"], a["did not follow"], a["followed, failed"]) == (0.25, 0.25, 0.5)


def test_failures_are_attributed_by_what_the_oracle_path_does_from_the_same_start_state():
    success = np.array([[True, False, False, False], [False, False, True, True]])  # [seeds, episodes]
    oracle = np.array([[True, True, False, False], [True, True, True, True]])
    c = hamster.counterfactual_attribution(success, oracle)
    # seed 0 fails episodes 1-3, of which the oracle path wins 1; seed 1 fails 0-1, the oracle path wins both
    assert c["failures"] == 5 and (c["the path"], c["the low level"]) == (3 / 5, 2 / 5)
    np.testing.assert_allclose(c["the path per seed"], [1 / 3, 1.0])

    def claim_5(hamster_success, oracle_success):
        zeros = np.zeros((2, 2, 4))
        methods = {name: {"success": np.array(ok, bool).reshape(2, 1, 4).repeat(2, axis=1), "frechet": zeros,
                          "adherence": zeros} for name, ok in (("hamster", hamster_success), ("oracle-path", oracle_success))}  # fmt: skip
        return next(v for v in report.claims(methods, ["in-domain", "layouts"]) if v.claim.startswith("5."))

    # the oracle path fails wherever HAMSTER fails: the low level's fault, for certain
    assert claim_5([[1, 0, 0, 0], [1, 1, 0, 0]], [[1, 0, 0, 0], [1, 1, 0, 0]]).holds is True
    # the oracle path wins every episode HAMSTER fails: the plan's fault
    assert claim_5([[1, 0, 0, 0], [1, 1, 0, 0]], [[1, 1, 1, 1], [1, 1, 1, 1]]).holds is False
    # seeds disagree (no failure the plan's on one, half on the other): the interval holds 0.5
    assert claim_5([[1, 0, 0, 0], [1, 1, 0, 0]], [[1, 0, 0, 0], [1, 1, 1, 0]]).holds is None


def fake(success, frechet=None):
    """Results of one method: success [seeds 2, splits, episodes 2] with the given per-split rates."""
    r = {"success": np.broadcast_to(np.asarray(success, float)[None, :, None], (2, len(success), 2)).copy()}
    if frechet is not None:
        r["frechet"] = np.full_like(r["success"], frechet)
        r["adherence"] = np.full_like(r["success"], 0.01)
    return r


def test_claims_are_checked_from_the_numbers():
    splits = ["in-domain", "layouts", "camera"]
    methods = {
        "hamster": fake([0.9, 0.8, 0.7], 0.05),
        "hamster-channels": fake([0.9, 0.8, 0.7], 0.05),
        "hamster-overlay": fake([0.9, 0.8, 0.3], 0.05),
        "hamster-50": fake([0.8, 0.6, 0.6], 0.05),
        "hamster-no-off": fake([0.9, 0.5, 0.4], 0.2),
        "flat": fake([1.0, 0.4, 0.2]),
        "monolithic": fake([1.0, 0.45, 0.2]),
    }
    verdicts = {v.claim[:2]: v.holds for v in report.claims(methods, splits)}
    assert verdicts == {"1.": True, "2.": True, "3.": True, "4.": True}  # 5 needs the oracle path's episodes
    methods["monolithic"] = fake([1.0, 0.6, 0.5])  # off-domain actions now help the monolithic policy by 0.25
    methods["hamster-overlay"] = fake([0.9, 0.8, 0.8], 0.05)  # the overlay drops less under the camera warp
    verdicts = {v.claim[:2]: v.holds for v in report.claims(methods, splits)}
    assert not verdicts["2."] and not verdicts["4."] and verdicts["1."]
    table = report.metric_table(methods, splits, "success")
    assert "| HAMSTER (lookahead) | 0.90 ± 0.00 | 0.80 ± 0.00 | 0.70 ± 0.00 | **0.75 ± 0.00** |" in table


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="methods: unknown or none \\['hamster-xl'\\]"):
        dataclasses.replace(TINY, methods=("hamster-xl",)).validate()
    with pytest.raises(ConfigError, match="splits: unknown or none \\['mars'\\]"):
        dataclasses.replace(TINY, splits=("mars",)).validate()
    with pytest.raises(ConfigError, match="image_size must be one of"):
        dataclasses.replace(TINY, image_size=48).validate()
    with pytest.raises(ConfigError, match="combos split needs a task that names objects"):
        dataclasses.replace(TINY, tasks=("reach",), splits=("combos",)).validate()
    with pytest.raises(ConfigError, match="seeds must be >= 1"):
        dataclasses.replace(TINY, seeds=0).validate()
    with pytest.raises(ConfigError, match="state must be one of proprio, privileged"):
        dataclasses.replace(TINY, state="everything").validate()


def test_privileged_state_adds_objects_goal_region_and_progress_not_the_walls():
    from envs.pathworld.world import STATE_DIM

    state = jnp.arange(STATE_DIM, dtype=jnp.float32)
    assert hierarchy.observed_state(state, "proprio").shape == (hierarchy.PROPRIO_DIM,)
    seen = hierarchy.observed_state(state, "privileged")
    fields = unpack(state)
    for name in ("pos", "vel", "grip", "held", "goal", "region", "progress", "failed"):
        assert set(np.asarray(getattr(fields, name)).ravel()) <= set(np.asarray(seen).ravel()), name
    assert set(np.asarray(fields.objects).ravel()) <= set(np.asarray(seen).ravel())
    assert seen.shape == (STATE_DIM - fields.free.size,)  # the wall grid, the vector's last fields, stays in the image


@pytest.fixture(scope="module")
def tiny_data():
    return hamster.build_data(TINY.validate(), jax.random.PRNGKey(0), log=lambda *_: None)


@pytest.mark.slow(
    reason="generates HAMSTER's data: expert episodes, renders and path channels of every domain (35 s)",
    companion="tests/test_hamster.py::test_a_rendered_row_matches_its_state",
)
def test_generated_data_is_what_each_model_should_see(tiny_data):
    data = tiny_data
    demos = data.demos
    assert 0 < data.demo_episodes <= TINY.demo_episodes and int(demos["episode"].max()) == data.demo_episodes - 1
    # images are the renders of the rows' states (in-domain: plain camera), stored as uint8
    assert demos["image"].dtype == jnp.uint8 and demos["image"].shape[1:] == (32, 32, 3)
    assert data.high_in["path"].shape == (data.demo_episodes, paths.MAX_WAYPOINTS, 4)
    # the low level's paths are the labels plus small noise on valid x, y only; the channels draw them
    labels = data.high_in["path"][demos["episode"]]
    noise = np.asarray(demos["path"] - labels)
    valid = np.asarray(labels[..., 3]) > 0.5
    assert 0.005 < noise[..., :2][valid].std() < 0.015 and not noise[..., :2][~valid].any() and not noise[..., 2:].any()
    np.testing.assert_array_equal(demos["channels"][:3], hamster.draw_channels(demos["path"][:3], 32))
    # the monolithic model's extra rows and the high level's extra examples come from the off-domain data
    assert data.actions_off["image"].shape[0] > 0 and data.high_off["path"].shape[0] == TINY.offdomain_paths + TINY.pointing
    full = hamster.training_set("high", "full", data)
    assert full["image"].shape[0] == data.demo_episodes + TINY.offdomain_paths + TINY.pointing
    half = hamster.training_set("channels", ("demos", 0.5), data)
    assert 0 < half["action"].shape[0] < demos["action"].shape[0]


def test_a_rendered_row_matches_its_state():
    v = hamster.sample_variants(hamster.SPLITS["camera"], TINY.tasks, 2, np.random.default_rng(3))
    states = hamster.first_states(v, jax.random.PRNGKey(0))
    images = hamster.render_states(states, v.params.palette, v.params.warp, 32)
    expected = render(unpack(states[1]), v.params.palette[1], v.params.warp[1], 32)
    np.testing.assert_allclose(hamster.from_pixels(images[1]), expected, atol=0.5 / 255 + 1e-6)


@pytest.mark.slow(
    reason="a whole HAMSTER table run, tiny: trains 3 models and evaluates 3 methods on 2 splits (63 s)",
    companion="tests/test_hierarchy.py::test_low_level_bc_learns_to_follow_a_straight_path",
)
def test_a_tiny_run_evaluates_every_method_from_the_same_states(tiny_data, monkeypatch, tmp_path):
    monkeypatch.setattr(hamster, "build_data", lambda cfg, key, log: tiny_data)
    result = hamster.run(TINY, jax.random.PRNGKey(1), tmp_path, log=lambda *_: None)
    methods = result["methods"]
    assert set(methods) == set(TINY.methods)
    for r in methods.values():
        assert r["success"].shape == (TINY.seeds, len(TINY.splits), TINY.eval_episodes)
    np.testing.assert_array_equal(methods["hamster"]["example"]["first"], methods["flat"]["example"]["first"])
    np.testing.assert_allclose(methods["oracle-path"]["frechet"], 0.0, atol=1e-6)  # the oracle follows the label itself
    assert "frechet" not in methods["flat"]
    assert np.all(methods["hamster"]["adherence"] >= 0) and np.all(np.isfinite(methods["hamster"]["adherence"]))
    assert set(result["losses"]) == {"high/full", "lookahead/demos/1", "action/demos/1"}
    # every model is a trainer run of its own: a rerun restores them (the same params) instead of training
    assert {p.name for p in tmp_path.iterdir()} == {"high_full", "lookahead_demos_1", "action_demos_1"}
    again = hamster.run(TINY, jax.random.PRNGKey(1), tmp_path, log=lambda *_: None)
    np.testing.assert_array_equal(again["methods"]["hamster"]["success"], methods["hamster"]["success"])
