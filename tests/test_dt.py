"""Decision Transformer: trajectory windows, causality, the evaluation context, and learning on Pendulum."""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl.agents.dt import DT, DTBatch, trajectory_arrays
from jaxrl.data import Dataset
from jaxrl.engine.sweep import make_members, stack_agents
from jaxrl.train import TrainConfig, train

SPEC = SimpleNamespace(obs_dim=3, action_dim=2, max_episode_steps=50)
TINY = dict(embedding_dim=32, num_layers=1, num_heads=2, context=10)


def tiny_dt(**overrides) -> DT:
    return DT(**(TINY | overrides)).configure(SPEC, 100)


def toy_dataset():
    """Episodes of 4 (terminal), 7 (timeout), 3 (terminal) and 12 (unflagged end of data) rows; the
    first observation coordinate is the row index, so sampled windows can be traced back to rows."""
    lengths, flags = [4, 7, 3, 12], ["terminal", "timeout", "terminal", None]
    n = sum(lengths)
    terminals, timeouts = np.zeros(n), np.zeros(n)
    end = -1
    for length, flag in zip(lengths, flags, strict=True):
        end += length
        if flag == "terminal":
            terminals[end] = 1
        elif flag == "timeout":
            timeouts[end] = 1
    rows = np.arange(n, dtype=np.float32)
    obs = np.stack([rows, np.sin(rows), np.cos(rows)], axis=1)
    actions = np.stack([np.tanh(0.1 * rows), -np.tanh(0.2 * rows)], axis=1)
    rewards = 1.0 + 0.5 * rows + np.where(rows % 3 == 0, -7.0, 0.0)
    data = Dataset.from_numpy(
        observations=obs, actions=actions, rewards=rewards, next_observations=obs, terminals=terminals, timeouts=timeouts
    )
    episode = np.repeat(np.arange(len(lengths)), lengths)
    return data, episode


def test_trajectory_arrays_by_hand():
    rtg, t, end = trajectory_arrays(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0, 1, 0, 0, 0]), np.zeros(5))
    np.testing.assert_allclose(rtg, [3.0, 2.0, 12.0, 9.0, 5.0])
    np.testing.assert_array_equal(t, [0, 1, 0, 1, 2])
    np.testing.assert_array_equal(end, [1, 1, 4, 4, 4])


def test_sampled_windows_stay_in_their_episode():
    data, episode = toy_dataset()
    rewards = np.asarray(data.rewards, np.float64)
    agent = tiny_dt(context=5, reward_scale=0.01)
    batch = jax.jit(agent.sample, static_argnums=2)(agent.training_data(data), jax.random.PRNGKey(0), 512)
    batch = jax.tree.map(np.asarray, batch)
    starts = batch.observations[:, 0, 0].astype(int)
    assert len(set(starts)) == data.size  # every row was drawn as a start
    for b, start in enumerate(starts):
        last = np.flatnonzero(episode == episode[start]).max()
        valid = min(last - start + 1, 5)
        np.testing.assert_array_equal(batch.mask[b], np.arange(5) < valid)
        rows = start + np.arange(valid)
        np.testing.assert_array_equal(batch.observations[b, :valid, 0], rows)  # consecutive rows, one episode
        np.testing.assert_allclose(batch.actions[b, :valid], np.asarray(data.actions)[rows])
        first = np.flatnonzero(episode == episode[start]).min()
        np.testing.assert_array_equal(batch.timesteps[b, :valid], rows - first)
        expected_rtg = [rewards[r : last + 1].sum() * 0.01 for r in rows]
        np.testing.assert_allclose(batch.returns_to_go[b, :valid], expected_rtg, rtol=1e-5)
        # padding after the episode's end is all zeros
        for x in (batch.returns_to_go, batch.observations, batch.actions, batch.timesteps):
            assert not np.any(x[b, valid:])


def test_target_return_defaults_to_the_best_episode():
    data, _ = toy_dataset()
    assert tiny_dt().adapt_to_dataset(data, {}).target_return == pytest.approx(data.episode_returns().max())
    assert tiny_dt(target_return=3.0).adapt_to_dataset(data, {"ref_max_score": 7.5}).target_return == 3.0
    assert DT.normalizes_rewards is False  # the trainer leaves its rewards (and returns-to-go) in raw units
    DT().validate()  # the NaN default ("from the dataset") is accepted before adaptation


def random_window(key, agent: DT, batch=3):
    k1, k2, k3 = jax.random.split(key, 3)
    k = agent.context
    return DTBatch(
        returns_to_go=jax.random.normal(k1, (batch, k)),
        observations=jax.random.normal(k2, (batch, k, agent.obs_dim)),
        actions=jax.random.uniform(k3, (batch, k, agent.action_dim), minval=-1, maxval=1),
        timesteps=jnp.broadcast_to(jnp.arange(k) + 3, (batch, k)),
        mask=jnp.ones((batch, k)),
    )


def test_predictions_are_causal():
    agent = tiny_dt()
    params = jax.jit(agent.init)(jax.random.PRNGKey(0)).model.params
    window = random_window(jax.random.PRNGKey(1), agent)
    predict = jax.jit(agent.predict)
    before = predict(params, window)
    j = 6
    changes = {
        "returns_to_go": window.returns_to_go.at[:, j].add(1.0),
        "observations": window.observations.at[:, j].add(1.0),
        "actions": window.actions.at[:, j].multiply(-1.0),
        "timesteps": window.timesteps.at[:, j].add(5),
    }
    for field, value in changes.items():
        after = predict(params, window.replace(**{field: value}))
        np.testing.assert_allclose(after[:, :j], before[:, :j], atol=1e-6, err_msg=field)
        # a_j is predicted from s_j, before a_j's own token; R_j, s_j and t_j do reach it
        changed_from = j + 1 if field == "actions" else j
        assert not np.allclose(after[:, changed_from], before[:, changed_from]), field
    # masked (padding) steps do not affect the valid ones, wherever they are
    mask = window.mask.at[:, j:].set(0.0)
    masked = predict(params, window.replace(mask=mask))
    garbage = window.replace(observations=window.observations.at[:, j:].set(99.0), mask=mask)
    np.testing.assert_allclose(predict(params, garbage)[:, :j], masked[:, :j], atol=1e-6)
    # dropout is only on with a key
    dropped = predict(params, window, jax.random.PRNGKey(2))
    assert not np.allclose(dropped, before)


def test_evaluation_context_holds_the_last_steps():
    agent = tiny_dt(target_return=-50.0, reward_scale=0.1)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    envs, k, total = 2, agent.context, 23
    obs_seq = jax.random.normal(jax.random.PRNGKey(1), (total, envs, agent.obs_dim))
    rewards = -jnp.arange(1.0, total + 1.0)[:, None] * jnp.array([1.0, 2.0])  # different per env
    # the return-to-go before step t: target minus the rewards so far, scaled
    expected_rtg = -5.0 - 0.1 * np.concatenate([np.zeros((1, envs)), np.cumsum(rewards[:-1], axis=0)])
    act, observe, predict = jax.jit(agent.act_with_carry), jax.jit(agent.observe), jax.jit(agent.predict)
    carry = agent.initial_carry(state, obs_seq[0])
    actions = []
    for t in range(total):
        np.testing.assert_allclose(carry.target, expected_rtg[t], rtol=1e-5)
        action, carry = act(state, obs_seq[t], None, carry)
        actions.append(action)
        assert action.shape == (envs, agent.action_dim) and np.all(np.abs(action) <= 1)
        steps = t + 1
        if steps in (1, 4, k, total):  # before, at and after the context fills up
            n = min(steps, k)
            np.testing.assert_array_equal(carry.step, [steps] * envs)
            np.testing.assert_allclose(carry.observations[:, :n], jnp.swapaxes(obs_seq[steps - n : steps], 0, 1))
            np.testing.assert_allclose(carry.actions[:, :n], jnp.swapaxes(jnp.stack(actions[-n:]), 0, 1))
            np.testing.assert_array_equal(carry.timesteps[:, :n], np.broadcast_to(np.arange(steps - n, steps), (envs, n)))
            np.testing.assert_allclose(carry.returns_to_go[:, :n], expected_rtg[steps - n : steps].T, rtol=1e-5)
            # the action is the model's prediction for the last valid step of the same left-aligned window
            window = DTBatch(
                carry.returns_to_go,
                carry.observations,
                carry.actions.at[:, n - 1].set(0.0),
                carry.timesteps,
                jnp.broadcast_to(jnp.arange(k) < n, (envs, k)).astype(jnp.float32),
            )
            np.testing.assert_allclose(predict(state.model.params, window)[:, n - 1], action, atol=1e-5)
        carry = observe(carry, rewards[t])


def test_members_vmap_with_their_own_hyperparameters():
    base = tiny_dt(target_return=-50.0)
    agents = stack_agents(base, make_members({"reward_scale": [0.1, 0.2]}, [0]))
    states = jax.jit(jax.vmap(lambda a, k: a.init(k)))(agents, jnp.stack([jax.random.PRNGKey(0)] * 2))
    obs = jnp.ones((3, base.obs_dim))

    def episode(agent, state):
        carry = agent.initial_carry(state, obs)
        _, carry = agent.act_with_carry(state, obs, None, carry)
        return agent.observe(carry, jnp.full((3,), -10.0)).target

    np.testing.assert_allclose(jax.jit(jax.vmap(episode))(agents, states), [[-4.0] * 3, [-8.0] * 3], rtol=1e-6)
    data, _ = toy_dataset()
    trajectories = agents.training_data(data)
    batch = jax.jit(jax.vmap(lambda a: a.sample(trajectories, jax.random.PRNGKey(0), 4)))(agents)
    np.testing.assert_allclose(batch.returns_to_go[1], 2 * batch.returns_to_go[0], rtol=1e-6)


def test_update_is_clipped_adamw_with_warmup_and_sweeps_as_one_vmap():
    """The optimiser written out: gradients clipped to global norm `grad_clip`, Adam, decoupled decay of
    every parameter, and the learning rate with its linear warm-up (capped at 10% of the run). All four
    are pytree leaves: members with their own values are one vmapped update."""
    agent = tiny_dt(embedding_dropout=0.0, attention_dropout=0.0, residual_dropout=0.0)  # no dropout: deterministic
    members = [
        {"learning_rate": 1e-2, "warmup_steps": 40.0, "grad_clip": 0.01, "weight_decay": 1.0},
        {"learning_rate": 3e-4, "warmup_steps": 0.0, "grad_clip": 1e9, "weight_decay": 0.0},
    ]
    agents = stack_agents(agent, members)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    batch = random_window(jax.random.PRNGKey(1), agent)
    params = state.model.params

    def loss(params):
        error = jnp.mean((agent.predict(params, batch) - batch.actions) ** 2, axis=-1)
        return jnp.sum(error * batch.mask) / jnp.sum(batch.mask)

    @jax.jit  # one program compiled: the members' updates, and the gradient to check them against
    def run(agents):
        return jax.vmap(lambda a: a.update(state, batch, None))(agents), jax.grad(loss)(params)

    (new, metrics), grads = run(agents)
    is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
    adam = next(x for x in jax.tree.leaves(new.model.opt_state, is_leaf=is_adam) if is_adam(x))
    params, grads = jax.tree.map(lambda x: np.asarray(x, np.float64), (params, grads))  # the check on the host
    norm = np.sqrt(sum(np.sum(g**2) for g in jax.tree.leaves(grads)))
    assert norm > 0.01  # the first member's clip is active
    np.testing.assert_allclose(metrics["grad_norm"], [norm, norm], rtol=1e-5)  # before clipping
    lr = [1e-2 / 10, 3e-4]  # step 0 of a warm-up of min(40, 0.1 * 100 steps); no warm-up
    np.testing.assert_allclose(metrics["learning_rate"], lr, rtol=1e-6)
    for i, (clip, decay) in enumerate([(0.01 / norm, 1.0), (1.0, 0.0)]):
        # Adam's first moment holds the clipped gradient; its first step is g / (|g| + eps) at any scale of g
        check_mu = lambda mu, g, i=i, clip=clip: np.testing.assert_allclose(mu[i], 0.1 * clip * g, rtol=1e-4, atol=1e-12)  # noqa: E731
        jax.tree.map(check_mu, adam.mu, grads)

        def check_step(new, p, g, i=i, clip=clip, decay=decay):
            # (atol: float32 parameters near 1, and a step is sensitive where a gradient is near Adam's eps)
            step = -lr[i] * (clip * g / (np.abs(clip * g) + 1e-8) + decay * p)
            np.testing.assert_allclose(new[i] - p, step, rtol=1e-3, atol=1e-3 * lr[i] + 2e-7)

        jax.tree.map(check_step, new.model.params, params, grads)


# Measured on 2 shared CPU cores (seed 0, 8000 updates of 64 windows, ~25-40 s): DT scores about 25-45
# normalised on Pendulum medium-replay, where BC (128x128, 6000 x 256) scores about -21; after 4000 updates
# (the test's setting) it scored 29.8 from -45.6 untrained (2026-12-02).
LEARNING_THRESHOLD = 0.0


@pytest.mark.slow(reason="learning run: 4,000 DT updates (23 s)", companion="tests/test_dt.py::test_predictions_are_causal")
def test_dt_learns_pendulum_medium_replay(tmp_path):
    agent = DT(
        embedding_dim=32,
        num_layers=1,
        num_heads=1,
        context=5,
        embedding_dropout=0.0,
        attention_dropout=0.0,
        residual_dropout=0.0,
        learning_rate=3e-3,
        target_return=-500.0,  # raw units: near the best episodes of the data (max -334, 90th percentile -640)
    )
    cfg = TrainConfig(
        agent=agent,
        env="gymnax/Pendulum-v1",
        dataset="medium-replay",
        seeds=1,
        steps=4000,
        chunk_steps=2000,  # the final chunk's mean loss is over the last 2000 updates
        batch_size=64,
        eval_every=2,
        eval_episodes=10,
        run_dir=str(tmp_path / "dt"),
        progress=False,
    )
    result = train(cfg)
    row = result.final_rows[0]
    assert math.isfinite(row["action_loss"]) and row["action_loss"] < 0.2
    assert row["normalized_score"] > LEARNING_THRESHOLD, row["normalized_score"]
