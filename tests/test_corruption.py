"""RIQL data corruption: which rows and fields change, by how much, adversarial attacks and their cache."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents.base import ConfigError
from jaxrl.data import Dataset
from jaxrl.protocols import corrupt
from jaxrl.protocols import corruption as C
from tests.rounding import assert_equal_up_to_rounding, assert_trees_equal

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "next_actions")

TINY = dict(attacker_steps=200, attacker_hidden_dims=(16, 16), attacker_num_critics=3, attack_steps=20)


def _dataset(n: int, seed: int = 0) -> Dataset:
    """Synthetic transitions with a reward that depends on s and a, so the attacker's Q has a slope."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    obs = jax.random.normal(k[0], (n, 3)) * jnp.array([1.0, 2.0, 0.5]) + 1.0
    act = jax.random.uniform(k[1], (n, 2), minval=-1, maxval=1)
    next_obs = obs + 0.1 * jnp.pad(act, ((0, 0), (0, 1))) + 0.01 * jax.random.normal(k[2], (n, 3))
    return Dataset(
        obs, act, -(obs**2).sum(1) - (act**2).sum(1), next_obs,
        (jnp.arange(n) % 97 == 96).astype(jnp.float32), (jnp.arange(n) % 50 == 49).astype(jnp.float32),
        next_actions=jnp.roll(act, -1, axis=0),
    )  # fmt: skip


@pytest.fixture(scope="module")
def large():
    return _dataset(20_000)


@pytest.fixture(scope="module")
def small():
    return _dataset(2_000, seed=1)


@pytest.fixture(scope="module")
def attacker(small, tmp_path_factory):
    return corrupt.pretrain_attacker(
        small, C.Corruption(("observations",), mode="adversarial", **TINY), tmp_path_factory.mktemp("c")
    )


def _changed_rows(new, old):
    new, old = np.asarray(new), np.asarray(old)
    return (new != old).reshape(len(old), -1).any(axis=1)


def _assert_only(new: Dataset, old: Dataset, field: str, mask):
    """`field` differs from `old` on exactly the rows of `mask`; everything else is bit-identical."""
    mask = np.asarray(mask)
    for name in FIELDS:
        a, b = np.asarray(getattr(new, name)), np.asarray(getattr(old, name))
        if name == field:
            np.testing.assert_array_equal(_changed_rows(a, b), mask)
            np.testing.assert_array_equal(a[~mask], b[~mask])
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def _assert_in_box(new, old, scale, atol=1e-5):
    std = np.asarray(old).std(axis=0)
    delta = np.abs(np.asarray(new, np.float64) - np.asarray(old, np.float64))
    assert np.all(delta <= scale * std * (1 + 1e-5) + atol), float((delta - scale * std).max())


@pytest.mark.parametrize("element", C.ELEMENTS)
def test_random_changes_one_field_on_masked_rows_within_bounds(large, element):
    field, scale = C.FIELDS[element], 0.5
    new, mask = C.random_corruption(large, element, 0.3, scale, jax.random.PRNGKey(3))
    _assert_only(new, large, field, mask)
    assert abs(float(np.mean(mask)) - 0.3) < 0.02  # binomial sd is 0.003 at N=20,000
    x = np.asarray(getattr(new, field))[np.asarray(mask)]
    if element == "rewards":
        assert x.min() >= -30 * scale and x.max() <= 30 * scale and x.std() > 5 * scale  # spread over the range
    else:
        _assert_in_box(getattr(new, field), getattr(large, field), scale)
        delta = np.asarray(getattr(new, field)) - np.asarray(getattr(large, field))
        assert np.all(np.abs(delta).max(axis=0) > 0.9 * scale * np.asarray(getattr(large, field)).std(axis=0))  # the box is used


def test_random_actions_are_not_clipped(large):
    new, _ = C.random_corruption(large, "actions", 1.0, 1.0, jax.random.PRNGKey(0))
    assert float(jnp.abs(new.actions).max()) > 1.1


def test_corrupt_several_elements_redraws_rows_and_records_them(large):
    corruption = C.Corruption(("observations", "actions", "rewards", "dynamics"), seed=4)
    metadata = {"env": "synthetic"}
    new, meta = corrupt.corrupt(large, metadata, corruption, verbose=False)
    assert metadata == {"env": "synthetic"}  # the caller's dict is not modified
    assert meta["env"] == "synthetic" and meta["corruption"]["mode"] == "random"
    assert meta["corruption"]["elements"] == list(corruption.elements) and meta["corruption"]["rate"] == 0.3
    indices = meta["corrupted_indices"]
    for element in C.ELEMENTS:
        field = C.FIELDS[element]
        np.testing.assert_array_equal(np.flatnonzero(_changed_rows(getattr(new, field), getattr(large, field))), indices[element])
        assert np.all(np.diff(indices[element]) > 0)
    for a, b in [(a, b) for a in C.ELEMENTS for b in C.ELEMENTS if a < b]:
        assert not np.array_equal(indices[a], indices[b]), (a, b)
    for name in ("terminals", "timeouts", "next_actions"):
        np.testing.assert_array_equal(getattr(new, name), getattr(large, name))


def test_corrupt_is_deterministic_given_the_seed(small):
    corruption = C.Corruption(("actions", "dynamics"), seed=7)
    (a, meta_a), (b, _) = (corrupt.corrupt(small, {}, corruption, verbose=False) for _ in range(2))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c, meta_c = corrupt.corrupt(small, {}, dataclasses.replace(corruption, seed=8), verbose=False)
    assert not np.array_equal(meta_a["corrupted_indices"]["actions"], meta_c["corrupted_indices"]["actions"])
    assert not np.array_equal(a.next_observations, c.next_observations)


def _q_of(element, q_fn, policy_fn, data: Dataset, rows):
    obs, act, next_obs = data.observations[rows], data.actions[rows], data.next_observations[rows]
    if element == "dynamics":
        return q_fn(next_obs, policy_fn(next_obs))
    return q_fn(obs, act)


@pytest.mark.numerics
@pytest.mark.parametrize("element", ["observations", "actions", "dynamics"])
def test_adversarial_stays_in_box_and_lowers_q_more_than_random(small, attacker, element):
    q_fn, policy_fn = attacker
    field, key = C.FIELDS[element], jax.random.PRNGKey(5)
    new, mask = C.adversarial_corruption(small, element, 0.3, 1.0, key, q_fn, policy_fn, steps=20, lr=0.01)
    _assert_only(new, small, field, mask)
    _assert_in_box(getattr(new, field), getattr(small, field), 1.0)

    noisy, random_mask = C.random_corruption(small, element, 0.3, 1.0, key)
    np.testing.assert_array_equal(mask, random_mask)  # same rows, so the Q values compare like for like
    rows = np.flatnonzero(np.asarray(mask))
    q_adversarial = float(_q_of(element, q_fn, policy_fn, new, rows).mean())
    q_random = float(_q_of(element, q_fn, policy_fn, noisy, rows).mean())
    assert q_adversarial < q_random

    again, _ = C.adversarial_corruption(small, element, 0.3, 1.0, key, q_fn, policy_fn, steps=20, lr=0.01)
    np.testing.assert_array_equal(getattr(again, field), getattr(new, field))
    # each row's attack is its own, so splitting the rows into padded chunks changes nothing but rounding
    chunked, _ = C.adversarial_corruption(small, element, 0.3, 1.0, key, q_fn, policy_fn, steps=20, lr=0.01, chunk_size=64)
    assert_equal_up_to_rounding(getattr(chunked, field), getattr(new, field))


def test_adversarial_rewards_are_negated_and_scaled(small):
    new, mask = C.adversarial_corruption(small, "rewards", 0.3, 0.5, jax.random.PRNGKey(2))
    _assert_only(new, small, "rewards", mask)
    m = np.asarray(mask)
    np.testing.assert_array_equal(np.asarray(new.rewards)[m], np.float32(-0.5) * np.asarray(small.rewards)[m])


def test_adversarial_cache_hits_and_misses(small, attacker, tmp_path, monkeypatch):
    calls = []

    def fake_pretrain(dataset, corruption, cache_dir=None):
        calls.append(corruption)
        return attacker

    monkeypatch.setattr(corrupt, "pretrain_attacker", fake_pretrain)
    corruption = C.Corruption(("actions", "rewards"), mode="adversarial", **TINY)
    first, meta = corrupt.corrupt(small, {}, corruption, cache_dir=tmp_path, verbose=False)
    assert len(calls) == 1 and [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # no temporary file left

    def no_training(dataset, corruption, cache_dir=None):
        raise AssertionError("the attacker was retrained")

    monkeypatch.setattr(corrupt, "pretrain_attacker", no_training)
    second, meta_hit = corrupt.corrupt(small, {}, corruption, cache_dir=tmp_path, verbose=False)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    for element in corruption.elements:
        np.testing.assert_array_equal(meta_hit["corrupted_indices"][element], meta["corrupted_indices"][element])
    assert meta_hit["corruption"] == meta["corruption"]

    with pytest.raises(AssertionError, match="retrained"):  # another setting is another file
        corrupt.corrupt(small, {}, dataclasses.replace(corruption, scale=0.5), cache_dir=tmp_path, verbose=False)
    with pytest.raises(AssertionError, match="retrained"):  # and so is other data
        corrupt.corrupt(small.replace(rewards=small.rewards + 1), {}, corruption, cache_dir=tmp_path, verbose=False)


def test_cache_key_covers_data_and_every_setting(small):
    corruption = C.Corruption(("observations",), mode="adversarial")
    key = C.cache_key(small, corruption)
    assert key == C.cache_key(small, C.Corruption(("observations",), mode="adversarial"))
    changes = dict(elements=("actions",), rate=0.2, scale=2.0, seed=1, attack_steps=5, attack_lr=0.1, attacker_steps=5,
                   attacker_hidden_dims=(8,), attacker_num_critics=2)  # fmt: skip
    assert set(changes) | {"mode"} == {f.name for f in dataclasses.fields(C.Corruption)}
    for name, value in changes.items():
        assert C.cache_key(small, dataclasses.replace(corruption, **{name: value})) != key, name
    flipped = small.replace(timeouts=small.timeouts.at[0].set(1.0))
    assert C.cache_key(flipped, corruption) != key


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(elements=()), "elements"),
        (dict(elements=("obs",)), "elements"),
        (dict(elements=("actions", "actions")), "elements"),
        (dict(elements="actions"), "elements"),
        (dict(mode="worst"), "mode"),
        (dict(rate=0.0), "rate"),
        (dict(rate=1.5), "rate"),
        (dict(scale=0.0), "scale"),
        (dict(scale=-1.0), "scale"),
        (dict(attack_steps=0), "attack_steps"),
        (dict(attacker_steps=-1), "attacker_steps"),
        (dict(attack_lr=0.0), "attack_lr"),
        (dict(attacker_num_critics=0), "attacker_num_critics"),
        (dict(attacker_hidden_dims=(16, 0)), "attacker_hidden_dims"),
    ],
)
def test_validation_names_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"corruption.{field}"):
        dataclasses.replace(C.Corruption(("actions",)), **changes).validate()
    assert C.Corruption(("actions",), rate=1.0).validate() is not None


def test_attacker_is_trained_once_per_data_and_settings(small, attacker, tmp_path):
    """A table attacks observations, actions and dynamics of one dataset: one attacker serves them all."""
    again = corrupt.pretrain_attacker(
        small, C.Corruption(("actions", "dynamics"), mode="adversarial", rate=0.5, **TINY), tmp_path
    )
    assert again is attacker
    seven = C.Corruption(("actions",), mode="adversarial", **{**TINY, "seed": 7})
    other = corrupt.pretrain_attacker(small, seven, tmp_path)
    assert other is not attacker
    # the attacker is a trainer run under the cache: another process restores it instead of training again
    assert [p.name for p in (tmp_path / "attackers").iterdir()] and (tmp_path / "attackers").is_dir()
    corrupt._ATTACKERS.clear()
    assert_trees_equal(corrupt.pretrain_attacker(small, seven, tmp_path), other)
