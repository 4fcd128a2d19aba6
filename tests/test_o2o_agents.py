"""Offline-to-online agents: SAC's UTD split and REDQ target, RO2O's terms, its lambda online and its
fine-tuning on Pendulum, WSRL's recipe (warm-up of the frozen policy, then SAC at UTD 4), Cal-QL's floor
offline, against CQL and online, and the errors of bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.agents import CQL, RO2O, SAC, SACN, WSRL, CalQL, ConfigError
from jaxrl.data import Dataset, load_dataset, save_dataset
from jaxrl.engine.reporting import MetricsWriter
from jaxrl.engine.returns import dataset_returns_to_go
from jaxrl.engine.sweep import member_keys
from jaxrl.protocols.suite import collect
from jaxrl.train import TrainConfig, build, train

TINY = (16, 16)
SPEC = envs.make("gymnax/Pendulum-v1").spec


def configured(agent):
    return agent.configure(SPEC, 1_000).validate()


def random_batch(key, n: int) -> Dataset:
    k = jax.random.split(key, 4)
    obs = jax.random.normal(k[0], (n, SPEC.obs_dim))
    actions = jax.random.uniform(k[1], (n, SPEC.action_dim), minval=-1.0, maxval=1.0)
    zeros = jnp.zeros(n)
    return Dataset(obs, actions, jax.random.normal(k[2], (n,)), jax.random.normal(k[3], (n, SPEC.obs_dim)), zeros, zeros)


@jax.jit
def update(agent, state, batch, key):
    """One update; float hyperparameters are leaves of `agent`, so agents that differ only in them share it."""
    return agent.update(state, batch, key)


def assert_trees_close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-6)


# SAC: several critic steps per update, REDQ target ------------------------------------------------


def test_critic_updates_make_that_many_critic_steps_then_one_actor_step():
    """UTD 4 inside one update: 4 critic steps, each on its own quarter of a 4 x 256 batch, then one actor
    step on all of it. Compared with the steps made one by one (a scan against a Python loop: two programs,
    so agreement to float32 rounding, rtol 1e-5)."""
    agent = configured(SAC(hidden_dims=TINY, num_critics=4, target_subset=2, critic_updates=4))
    assert agent.rows_per_update(256) == 1024
    state = agent.init(jax.random.PRNGKey(0))
    batch, key = random_batch(jax.random.PRNGKey(1), 4 * 32), jax.random.PRNGKey(2)
    updated, _ = update(agent, state, batch, key)

    k_next, k_pi, k_reg = jax.random.split(key, 3)
    manual, critic_step = state, jax.jit(agent.critic_step)
    for i, (kn, kr) in enumerate(zip(jax.random.split(k_next, 4), jax.random.split(k_reg, 4), strict=True)):
        quarter = jax.tree.map(lambda x, i=i: x[32 * i : 32 * (i + 1)], batch)
        manual, _ = critic_step(manual, quarter, kn, kr)
    manual, _ = jax.jit(agent.actor_step)(manual, batch, k_pi)
    assert_trees_close(updated.replace(step=manual.step), manual, rtol=1e-5)
    assert int(updated.step) == 1
    # 4 critic steps moved the critics further than one step on the whole batch does.
    one = configured(SAC(hidden_dims=TINY, num_critics=4, target_subset=2))
    single, _ = update(one, state, batch, key)

    def distance(s):
        return sum(
            float(jnp.abs(a - b).sum())
            for a, b in zip(jax.tree.leaves(s.critic.params), jax.tree.leaves(state.critic.params), strict=True)
        )  # noqa: E731

    assert distance(updated) > 2 * distance(single)


def test_target_subset_is_checked_against_the_ensemble():
    with pytest.raises(ConfigError, match=r"sac.target_subset must be in \[1, num_critics=2\], got 3"):
        SAC(target_subset=3).validate()


# RO2O ---------------------------------------------------------------------------------------------


def test_ro2o_without_its_terms_is_sac_n():
    """RO2O's three terms are additions to SAC-N: with their weights at 0 an update is SAC-N's (float32
    rounding of the zero terms' gradients: rtol 1e-6)."""
    ro2o = configured(
        RO2O(hidden_dims=TINY, num_critics=3, num_perturbations=3, q_smooth_weight=0.0, ood_weight=0.0, policy_weight=0.0)
    )
    sacn = configured(SACN(hidden_dims=TINY, num_critics=3))
    state = ro2o.init(jax.random.PRNGKey(0))
    batch, key = random_batch(jax.random.PRNGKey(1), 64), jax.random.PRNGKey(2)
    with_terms, metrics = update(ro2o, state, batch, key)
    plain, _ = update(sacn, state, batch, key)  # SAC's update keeps RO2O's state fields
    assert_trees_close(with_terms.replace(uncertainty_weight=plain.uncertainty_weight), plain, rtol=1e-6)
    assert {"q_smoothness", "ood_penalty", "policy_smoothness", "uncertainty_weight"} <= set(metrics)
    # With the terms on, the same update moves the critics and the actor elsewhere.
    ro2o_on = ro2o.replace(q_smooth_weight=1.0, ood_weight=1.0, policy_weight=1.0)
    on, metrics = update(ro2o_on, state, batch, key)  # the same program as `ro2o`: the weights are leaves
    assert float(metrics["policy_smoothness"]) > 0 and float(metrics["ood_penalty"]) > 0
    # (Adam's first step is +-lr per weight, so only weights whose gradient changed sign move elsewhere.)
    for part in ("actor", "critic"):
        changed = [
            not np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(getattr(on, part)), jax.tree.leaves(getattr(plain, part)), strict=True)
        ]
        assert any(changed), part


@pytest.mark.parametrize(
    "mode, online_weight, online_decay, final",
    [("continue", 0.7, 0.1, 0.2), ("restart", 2.0, 1e-6, 2.0 - 10 * 1e-6), ("fixed", 0.2, 0.0, 0.2)],
)
def test_ro2o_uncertainty_weight_decays_per_update_and_online_as_chosen(mode, online_weight, online_decay, final):
    """lambda falls by lambda_decay every update down to lambda_end; online it continues (the paper), restarts
    at 2.0 decaying by 1e-6 (the reference fine-tuning script) or stays at lambda_end (its README)."""
    agent = configured(
        RO2O(hidden_dims=TINY, num_critics=2, num_perturbations=2, lambda_decay=0.1, lambda_end=0.2, online_lambda=mode)
    )
    state = agent.init(jax.random.PRNGKey(0))
    for i in range(3):
        state, _ = update(agent, state, random_batch(jax.random.PRNGKey(i), 32), jax.random.PRNGKey(i))
    np.testing.assert_allclose(state.uncertainty_weight, 0.7, rtol=1e-6)
    online = agent.for_online()
    state = online.enter_online(state)
    np.testing.assert_allclose(state.uncertainty_weight, online_weight, rtol=1e-6)
    np.testing.assert_allclose(online.lambda_decay, online_decay, rtol=1e-6)
    for i in range(10):  # the offline update's program: for_online changes only leaves
        state, _ = update(online, state, random_batch(jax.random.PRNGKey(i), 32), jax.random.PRNGKey(i))
    np.testing.assert_allclose(state.uncertainty_weight, final, rtol=1e-6)  # never below lambda_end
    with pytest.raises(ConfigError, match="ro2o.online_lambda must be one of continue, restart, fixed"):
        RO2O(online_lambda="readme").validate()


@pytest.mark.slow(
    reason="learning run: 1,000 offline updates and 4,000 online steps of a 5-critic ensemble (46 s)",
    companion="tests/test_o2o_agents.py::test_ro2o_without_its_terms_is_sac_n",
)
def test_ro2o_fine_tunes_pendulum_medium_replay_without_falling_far_below_its_offline_score(tmp_path):
    """RO2O pretrained on medium-replay (poor data: its offline policy scores about -25) and fine-tuned online
    in a fresh buffer improves on it. Measured on the development CPU (2026-12-07, 5 critics, 2
    perturbations, 2 seeds, each on its own evaluation episodes, the final over 50): offline -22.6/-25.7 after
    1,000 updates; final 24.2/2.9 after 4,000 env steps; the lowest online evaluation -37.5. Margins: the
    seeds' mean final score at least 20 above their mean offline one, and no online evaluation more than
    45 below its seed's offline score (the first updates on a 500-row buffer)."""
    agent = RO2O(hidden_dims=(64, 64), num_critics=5, num_perturbations=2)
    cfg = TrainConfig(agent=agent, dataset="medium-replay", regime="offline-to-online", seeds=2, steps=1_000,
                      online_steps=4_000, chunk_steps=500, eval_every=1, eval_episodes=5, final_eval_episodes=50,
                      learning_starts=500, buffer="discard", run_dir=str(tmp_path / "ro2o"), progress=False)  # fmt: skip
    result = train(cfg)
    rows = [r for r in MetricsWriter.read(result.run_dir) if "normalized_score" in r]
    scores = {(r["member"], r["phase"], r["step"]): r["normalized_score"] for r in rows}
    offline = [scores[(m, "offline", 1_000)] for m in (0, 1)]
    online = [[s for (member, phase, _), s in scores.items() if member == m and phase == "online"] for m in (0, 1)]
    print(f"ro2o: offline {offline}, online {online}")
    assert all(len(o) == 8 for o in online)
    assert np.mean([o[-1] for o in online]) > np.mean(offline) + 20, (offline, online)
    assert all(min(o) > off - 45 for o, off in zip(online, offline, strict=True)), (offline, online)


# WSRL ---------------------------------------------------------------------------------------------


def test_wsrl_fine_tunes_as_sac_at_utd_4_over_its_ensemble():
    """WSRL's online agent is plain SAC (no CQL term, no floor) over the pretrained 10-critic LayerNorm
    ensemble with the REDQ pair, 4 critic steps per update, actor and temperature lr 1e-4."""
    online = configured(WSRL()).for_online()
    assert type(online) is SAC and not online.uses_returns_to_go
    assert (online.num_critics, online.critic_layer_norm, online.target_subset, online.critic_updates) == (10, True, 2, 4)
    assert (
        online.backup_entropy is False
        and float(online.actor_lr) == pytest.approx(1e-4)
        and float(online.alpha_lr) == pytest.approx(1e-4)
    )
    assert online.rows_per_update(256) == 1024


@pytest.fixture(scope="module")
def pendulum_file(tmp_path_factory):
    """2,000 transitions of a noisy swing policy in Pendulum: 10 complete 200-step episodes."""
    env = envs.make("gymnax/Pendulum-v1")

    def policy(obs, key):
        push = jnp.sign(obs[:, 2:3]) * 0.8  # swing with the angular velocity
        return jnp.clip(push + 0.3 * jax.random.normal(key, push.shape), -1.0, 1.0)

    data = collect(env, policy, jax.random.PRNGKey(0), 2_000, 10)
    return save_dataset(
        tmp_path_factory.mktemp("data") / "swing.npz",
        data,
        {"env": "gymnax/Pendulum-v1", "ref_min_score": -1200.0, "ref_max_score": -150.0},
    )


def o2o_config(tmp_path, data, agent, **overrides):
    kwargs = dict(agent=agent, dataset=str(data), regime="offline-to-online", seeds=1, steps=100, online_steps=200,
                  chunk_steps=100, batch_size=32, learning_starts=100, buffer_size=1_000, buffer="discard",
                  eval_episodes=1, run_dir=str(tmp_path / "run"), progress=False)  # fmt: skip
    return TrainConfig(**(kwargs | overrides))


def test_wsrl_warm_up_collects_with_the_frozen_pretrained_policy(tmp_path, pendulum_file):
    """During the warm-up (learning_starts) of a pretrained agent no update is made and every action is
    the pretrained policy's own sample, not a uniform one."""
    agent = WSRL(hidden_dims=TINY, num_critics=3, num_sampled_actions=2)
    built = build(o2o_config(tmp_path, pendulum_file, agent))
    program, keys = built.program, member_keys(built.members)
    states, _ = program.chunk(program.init(keys), 0)  # the offline phase
    online = program.enter(states, 1, keys)
    after, metrics = program.chunk(online, 1)  # the first 100 online env steps: the warm-up
    assert int(metrics["updates"][0]) == 0
    for a, b in zip(jax.tree.leaves(after.agent), jax.tree.leaves(online.agent), strict=True):
        np.testing.assert_array_equal(a, b)  # frozen
    # The first stored action is the pretrained policy's sample for the first observation and key.
    one = jax.tree.map(lambda x: x[0], online)
    sac = jax.tree.map(lambda x: x[0], program.phases[1].spec.agents)
    act_key = jax.random.split(one.key, 5)[1]
    expected = jax.jit(sac.explore)(one.agent, one.normalizer(one.obs), act_key)[0]
    np.testing.assert_allclose(after.buffer.data.actions[0, 0], expected[0], rtol=1e-5)


# Cal-QL -------------------------------------------------------------------------------------------


def test_calql_needs_episode_boundaries(tmp_path, pendulum_file):
    """Cal-QL's reference values are per-episode returns: data without terminals or timeouts is refused
    before anything compiles, naming the dataset."""
    arrays = dict(np.load(pendulum_file))
    arrays["terminals"][:] = False
    arrays["timeouts"][:] = False
    flat = tmp_path / "flat.npz"
    np.savez(flat, **arrays)
    with pytest.raises(ConfigError, match=r"flat.npz.* has no episode boundaries"):
        build(o2o_config(tmp_path, flat, CalQL(hidden_dims=TINY)))


def test_calql_floor_stops_pushing_down_q_below_the_returns():
    """Where a state's Monte Carlo return is above the Q values of the policy's actions, Cal-QL's floor stops
    CQL's penalty from pushing them further down: from the same state and batch, an update leaves Q at the
    policy's actions higher than CQL's update does. Where the returns are -inf (an online episode not yet
    ended) Cal-QL's update is CQL's, bit for bit (the same program on the same machine)."""
    kwargs = dict(hidden_dims=TINY, num_sampled_actions=4, cql_alpha=10.0, max_target_backup=True)  # Cal-QL's default
    cql, calql = configured(CQL(**kwargs)), configured(CalQL(**kwargs))
    state = cql.init(jax.random.PRNGKey(0))
    batch, key = random_batch(jax.random.PRNGKey(1), 64), jax.random.PRNGKey(2)
    pi = cql.act(state, batch.observations, None, True)

    def q_pi(s):
        return float(cql.critic_net.apply(s.critic.params, batch.observations, pi).mean())

    after_cql, _ = update(cql, state, batch.replace(mc_returns=jnp.full(64, -jnp.inf)), key)
    unbounded, _ = update(calql, state, batch.replace(mc_returns=jnp.full(64, -jnp.inf)), key)
    for a, b in zip(jax.tree.leaves(unbounded), jax.tree.leaves(after_cql), strict=True):
        np.testing.assert_array_equal(a, b)
    high = float(cql.critic_net.apply(state.critic.params, batch.observations, pi).max()) + 100.0
    floored, _ = update(calql, state, batch.replace(mc_returns=jnp.full(64, high)), key)
    assert q_pi(floored) > q_pi(after_cql)


@pytest.mark.slow(
    reason="trains Cal-QL and CQL side by side (19 s)",
    companion="tests/test_o2o_agents.py::test_calql_floor_stops_pushing_down_q_below_the_returns",
)
def test_calql_raises_q_on_dataset_actions_where_cql_underestimates(pendulum_file):
    """CQL and Cal-QL trained from the same initial parameters on the same batches and keys (so the floor is
    their only difference) on the swing data, rewards scaled by 0.1 and gamma 0.9 so that 1,000 updates
    converge. Where CQL's Q at the data's own actions is below the Monte Carlo return, Cal-QL's is higher.
    Measured (2026-12-03, development CPU): on those rows (11% of them) CQL is 1.45 below the returns on
    average, Cal-QL 0.17 below."""
    data, _ = load_dataset(pendulum_file, SPEC)
    data = dataset_returns_to_go(data.replace(rewards=0.1 * data.rewards), 0.9)
    n, steps = data.rewards.shape[0], 1_000

    def data_q(agent):
        agent = agent.configure(SPEC, steps).validate()

        def update(state, key):
            rows, k_update = jax.random.split(key)
            batch = jax.tree.map(lambda x: x[jax.random.randint(rows, (256,), 0, n)], data)
            return agent.update(state, batch, k_update)[0], None

        keys = jax.random.split(jax.random.PRNGKey(1), steps)
        state, _ = jax.jit(lambda s: jax.lax.scan(update, s, keys))(agent.init(jax.random.PRNGKey(0)))
        return np.asarray(agent.critic_net.apply(state.critic.params, data.observations, data.actions).min(0))

    kwargs = dict(hidden_dims=(32, 32), num_sampled_actions=4, cql_alpha=5.0, gamma=0.9)
    cql_gap = data_q(CQL(**kwargs)) - np.asarray(data.mc_returns)
    calql_gap = data_q(CalQL(**kwargs)) - np.asarray(data.mc_returns)
    under = cql_gap < 0
    print(
        f"rows where CQL underestimates: {under.mean():.1%}; gap CQL {cql_gap[under].mean():.2f}, Cal-QL {calql_gap[under].mean():.2f}"
    )
    assert under.mean() > 0.02
    assert calql_gap[under].mean() > cql_gap[under].mean() + 0.6, (cql_gap[under].mean(), calql_gap[under].mean())


def test_calql_backs_up_the_best_of_its_sampled_next_actions():
    """Cal-QL's reference runs CQL's max target backup: of n actions a' ~ pi(s'), the target takes the one
    whose (min over critics) target value is highest, with that action's log-probability; CQL keeps SAC's
    single sample unless asked."""
    from types import SimpleNamespace

    assert CalQL().max_target_backup and not CQL().max_target_backup
    spec = SimpleNamespace(obs_dim=3, action_dim=2)
    agent = CalQL(hidden_dims=(16, 16), num_sampled_actions=5, backup_entropy=True).configure(spec, 10)
    state = agent.init(jax.random.PRNGKey(0))
    next_obs, key, alpha = jax.random.normal(jax.random.PRNGKey(1), (4, 3)), jax.random.PRNGKey(2), 0.3
    value = agent.next_value(state, next_obs, key, alpha)
    repeated = jnp.broadcast_to(next_obs, (5, 4, 3))
    actions, log_probs = agent.sample_action(state.actor.params, repeated, key)
    q = agent.critic_net.apply(state.target_critic_params, repeated, actions).min(axis=0)  # [n, B]
    best = np.asarray(q).argmax(axis=0)
    by_hand = np.asarray(q)[best, np.arange(4)] - alpha * np.asarray(log_probs)[best, np.arange(4)]
    np.testing.assert_allclose(value, by_hand, rtol=1e-6)
    single = CQL(**{k: getattr(agent, k) for k in ("hidden_dims", "backup_entropy")}).configure(spec, 10)
    assert value.shape == single.next_value(state, next_obs, key, alpha).shape == (4,)
