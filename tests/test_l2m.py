"""L2M's modulation pool and the continual learners: retrieval by hand, what trains, LoRA's identity start,
prompts and padding, forgetting on two tiny tasks, and bad input."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import ConfigError
from jaxrl.agents.dt import DT, Modulation, masked_action_error
from jaxrl.data import Dataset
from jaxrl.engine.stage import replicate_agent, run_stage
from jaxrl.engine.trainer import WarmStart
from jaxrl.protocols import modulation as pool_ops
from jaxrl.protocols.continual import (
    METHODS,
    PRETRAIN,
    ContinualAgent,
    ContinualConfig,
    TaskData,
    TaskSequence,
    continual_agent,
    load_pretrained,
    pretrain_variants,
    save_pretrained,
)
from tests.rounding import assert_trees_equal

SPEC = SimpleNamespace(obs_dim=4, action_dim=2, max_episode_steps=20)
EPISODES, LENGTH = 20, 20  # per task
ROWS = EPISODES * LENGTH
CFG = ContinualConfig(batch_size=64, pool_size=4, rank=4, prompt_length=3, fisher_samples=64, learning_rate=3e-3,
                      pretrain_learning_rate=3e-3)  # fmt: skip


def tiny_agent(**overrides) -> DT:
    no_dropout = dict(embedding_dropout=0.0, attention_dropout=0.0, residual_dropout=0.0)
    settings = dict(embedding_dim=32, num_layers=1, num_heads=2, context=5, warmup_steps=0.0) | no_dropout
    return DT(**(settings | overrides)).configure(SPEC, 1000)


# ----- retrieval -----


def test_retrieval_matches_hand_computed_similarities_and_usage_penalty():
    keys = jnp.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    queries = jnp.array([[3.0, 0.5], [0.2, 1.0]])
    normalise = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    by_hand = normalise(np.asarray(queries)) @ normalise(np.asarray(keys)).T
    similarity = pool_ops.cosine_similarity(queries, keys)
    np.testing.assert_allclose(similarity, by_hand, rtol=1e-6)

    usage = pool_ops.Usage.create(3)
    index, cos = pool_ops.select(similarity, usage, penalise=False)
    np.testing.assert_array_equal(index, [0, 1])  # plain argmax of the similarity
    np.testing.assert_allclose(cos, [by_hand[0, 0], by_hand[1, 1]], rtol=1e-6)

    # two batches: entry 0 three times of four, then entry 0 once of four -> running mean (0.75+0.25)/2
    usage = pool_ops.record_usage(usage, jnp.array([0, 0, 0, 1]))
    usage = pool_ops.record_usage(usage, jnp.array([0, 1, 1, 1]))
    np.testing.assert_allclose(usage.counts, [0.5, 0.5, 0.0])
    usage = pool_ops.switch_task(usage)
    inverse = 1.0 / (np.array([0.5, 0.5, 0.0]) + 1e-6)
    np.testing.assert_allclose(usage.inverse, inverse / inverse.sum(), rtol=1e-6)
    scores = (by_hand + 1.0) / 2.0 * (inverse / inverse.sum())
    np.testing.assert_allclose(pool_ops.retrieval_scores(similarity, usage, True), scores, rtol=1e-5)
    index, cos = pool_ops.select(similarity, usage, penalise=True)
    np.testing.assert_array_equal(index, [2, 2])  # the unused entry wins although it is the least similar
    np.testing.assert_allclose(cos, by_hand[:, 2], rtol=1e-6)


def test_query_is_the_masked_mean_of_the_state_tokens():
    tokens = jnp.arange(2 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 2)
    mask = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(pool_ops.query(tokens, mask), [[1.0, 2.0], [6.0, 7.0]])


def test_unknown_pool_kind_is_refused():
    with pytest.raises(ValueError, match="kind 'adapter'"):
        pool_ops.init_pool(jax.random.PRNGKey(0), "adapter", 4, 1, 8)


# ----- the modulated DT -----


@pytest.fixture(scope="module")
def windows():
    agent = tiny_agent()
    k_obs, k_act, k_rtg = jax.random.split(jax.random.PRNGKey(3), 3)
    batch = agent.windows(  # placeholder rows; the fields below are what matters
        SimpleNamespace(
            observations=jax.random.normal(k_obs, (40, 4)),
            actions=jax.random.uniform(k_act, (40, 2), minval=-1, maxval=1),
            returns_to_go=jax.random.normal(k_rtg, (40,)),
            timesteps=jnp.arange(40) % 10,
            episode_end=(jnp.arange(40) // 10) * 10 + 9,
        ),
        jnp.array([0, 7, 12, 28]),  # two windows cut by their episode's end: padding after it
    )
    return agent, batch


def test_lora_with_zero_b_is_the_frozen_model_exactly(windows):
    agent, batch = windows
    predict = jax.jit(agent.predict)  # one program for every modulation below (op by op costs more)
    params = agent.init(jax.random.PRNGKey(0)).model.params
    pool = pool_ops.init_pool(jax.random.PRNGKey(1), "lora", 4, agent.num_layers, agent.embedding_dim, rank=4)
    mod = pool_ops.modulation(pool, jnp.array([0, 1, 2, 3]))
    frozen = predict(params, batch)
    np.testing.assert_array_equal(predict(params, batch, modulation=mod), frozen)

    trained_b = {m: jnp.full_like(b, 0.05) for m, b in pool["lora_b"].items()}
    mod = pool_ops.modulation(pool | {"lora_b": trained_b}, jnp.array([0, 1, 2, 3]))
    assert np.abs(np.asarray(predict(params, batch, modulation=mod) - frozen)).max() > 1e-3
    # scale 0 (the oracle's rule for pretraining tasks) switches a trained entry off, exactly
    np.testing.assert_array_equal(predict(params, batch, modulation=mod.replace(scale=0.0)), frozen)


def test_prompts_change_predictions_but_not_what_padding_hides(windows):
    """Prompt tokens are prepended to every window; valid steps still ignore the padding after an
    episode's end, and the output keeps the window's shape."""
    agent, batch = windows
    assert float(batch.mask.sum()) < batch.mask.size  # the fixture has padded steps
    params = agent.init(jax.random.PRNGKey(0)).model.params
    pool = pool_ops.init_pool(jax.random.PRNGKey(1), "prompt", 4, agent.num_layers, agent.embedding_dim, prompt_length=3)
    mod = pool_ops.modulation(pool, jnp.array([0, 1, 2, 3]))
    prompted = agent.predict(params, batch, modulation=mod)
    assert prompted.shape == batch.actions.shape
    assert np.abs(np.asarray(prompted - agent.predict(params, batch))).max() > 1e-3

    padding = (batch.mask == 0)[..., None]
    scrambled = batch.replace(
        observations=jnp.where(padding, 9.0, batch.observations),
        actions=jnp.where(padding, -0.9, batch.actions),
        returns_to_go=jnp.where(batch.mask == 0, 5.0, batch.returns_to_go),
    )
    again = agent.predict(params, scrambled, modulation=mod)
    valid = np.asarray(batch.mask, bool)
    np.testing.assert_array_equal(np.asarray(again)[valid], np.asarray(prompted)[valid])


def test_modulation_gathers_each_rows_entry():
    pool = pool_ops.init_pool(jax.random.PRNGKey(0), "lora", 5, 2, 8, rank=2)
    mod = pool_ops.modulation(pool, jnp.array([4, 0, 4]))
    assert mod.lora_a["q"].shape == (3, 2, 8, 2) and mod.lora_b["ff"].shape == (3, 2, 2, 32)
    np.testing.assert_array_equal(mod.lora_a["v"][1], pool["lora_a"]["v"][0])
    np.testing.assert_array_equal(mod.lora_a["ff"][2], pool["lora_a"]["ff"][4])
    assert isinstance(mod, Modulation) and mod.prompt is None


# ----- learning on two tiny tasks -----


def two_tasks():
    """A pretraining task and two sequence tasks that conflict: the same states map to opposite actions
    (a = tanh(s W) for task 1, -tanh(s W) for task 2). A marker coordinate (0, +2, -2) tells the tasks apart,
    so retrieval can; a model fine-tuned on task 2 alone has no reason to keep task 1."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2))
    parts = []
    for marker, actions in ((0.0, lambda s: np.tanh(s @ rng.normal(size=(3, 2)))),
                            (2.0, lambda s: np.tanh(s @ w)), (-2.0, lambda s: -np.tanh(s @ w))):  # fmt: skip
        s = rng.normal(size=(ROWS, 3))
        parts.append((np.concatenate([np.full((ROWS, 1), marker), s], 1), actions(s)))
    obs = np.concatenate([p[0] for p in parts]).astype(np.float32)
    n = len(obs)
    timeouts = np.zeros(n)
    timeouts[LENGTH - 1 :: LENGTH] = 1
    return Dataset.from_numpy(
        observations=obs, actions=np.concatenate([p[1] for p in parts]).astype(np.float32),
        rewards=np.zeros(n, np.float32), next_observations=obs, terminals=np.zeros(n), timeouts=timeouts,
    )  # fmt: skip


class AfterEachTask:
    """A trainer hook keeping member 0's learner after each task of a sequence stage."""

    def __init__(self, chunks_per_task: int):
        self.per_task, self.learners = chunks_per_task, {}

    def after_chunk(self, end):
        if (end.index + 1) % self.per_task == 0:
            self.learners[(end.index + 1) // self.per_task] = jax.tree.map(lambda x: x[0], end.states.agent)

    def close(self):
        pass


class Killed(Exception):
    pass


def kill_after(chunk: int):
    def after_chunk(end):
        if end.index == chunk:
            raise Killed

    return SimpleNamespace(after_chunk=after_chunk, close=lambda: None)


@pytest.fixture(scope="module")
def sequence_runs(tmp_path_factory):
    """Pretrain on task 0, then fine-tune L2M and full fine-tuning on task 1, then task 2 (300 updates each),
    each a trainer run as the protocol runs them."""
    agent = tiny_agent()
    data = TaskData(agent.training_data(two_tasks()), jnp.zeros(3), None, ROWS, 1)
    root = tmp_path_factory.mktemp("l2m")
    pre = continual_agent(CFG, agent, PRETRAIN, data, span="pretrain")
    pretrained = run_stage(replicate_agent(pre, 1), [TaskSequence(1, 400, 100, CFG.batch_size)], data.trajectory,
                           jax.random.PRNGKey(0)[None], root / "pretrain", {"stage": "pretrain"})  # fmt: skip
    backbone = jax.tree.map(lambda x: x[0], pretrained.states.agent.model.params["backbone"])

    windows = jax.jit(agent.windows)

    def task_error(predict, state, task):
        batch = windows(data.trajectory, task * ROWS + jnp.arange(0, ROWS - agent.context, 3))
        actions, index, _ = predict(state.model.params, state.usage, batch, task - 1, False)
        return float(masked_action_error(actions, batch)), np.asarray(index)

    def fine_tune(learner, name, hooks=()):
        start = learner.start(backbone, jax.random.PRNGKey(1))
        after = AfterEachTask(3)
        stage = run_stage(replicate_agent(learner, 1), [TaskSequence(2, 300, 100, CFG.batch_size)], data.trajectory,
                          jax.random.PRNGKey(2)[None], root / name, {"stage": name},
                          warm_start=WarmStart(jax.tree.map(lambda x: x[None], start)), hooks=(*hooks, after))  # fmt: skip
        return start, after.learners, stage

    runs = {}
    for name in ("l2m", "full-ft"):
        learner = continual_agent(CFG, agent, METHODS[name], data)
        predict = jax.jit(learner.predict, static_argnums=4)  # one program for every task's windows
        start, after, stage = fine_tune(learner, name)
        runs[name] = dict(
            start=start, after_1=after[1], after_2=after[2], stage=stage,
            task_1_after_1=task_error(predict, after[1], 1), task_1_after_2=task_error(predict, after[2], 1),
            task_2_after_2=task_error(predict, after[2], 2),
        )  # fmt: skip
    return runs


def test_l2m_keeps_task_1_while_learning_task_2_and_full_fine_tuning_forgets(sequence_runs):
    l2m, full = sequence_runs["l2m"], sequence_runs["full-ft"]
    # both learn each task (the actions are in [-1, 1]: an error of 0.01 is a tenth of an action unit)
    for run in (l2m, full):
        assert run["task_1_after_1"][0] < 0.01 and run["task_2_after_2"][0] < 0.01
    # full fine-tuning overwrites task 1 (task 2's actions are its negation: up to 4x the squared action);
    # L2M's task-1 entry is not touched by task 2, so its error stays that of the end of task 1
    assert full["task_1_after_2"][0] > 0.2
    assert l2m["task_1_after_2"][0] < 0.01 and full["task_1_after_2"][0] > 20 * l2m["task_1_after_2"][0]
    # retrieval: each task's windows select one entry, a different one per task
    entries_1, entries_2 = l2m["task_1_after_2"][1], l2m["task_2_after_2"][1]
    assert len(set(entries_1)) == 1 and len(set(entries_2)) == 1 and entries_1[0] != entries_2[0]


def test_l2m_fine_tuning_changes_only_the_pool(sequence_runs):
    l2m, full = sequence_runs["l2m"], sequence_runs["full-ft"]
    assert_trees_equal(l2m["after_2"].model.params["backbone"], l2m["start"].model.params["backbone"])
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), l2m["after_2"].model.params["pool"], l2m["start"].model.params["pool"]
    )
    assert all(jax.tree.leaves(moved))  # keys, every A and every B trained
    changed = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), full["after_2"].model.params["backbone"], full["start"].model.params["backbone"]
    )
    assert all(jax.tree.leaves(changed))


def test_trainable_parameter_counts(sequence_runs):
    agent = tiny_agent()
    d, r, layers, pool = agent.embedding_dim, CFG.rank, agent.num_layers, CFG.pool_size
    per_entry = d + layers * (2 * (d * r + r * d) + 2 * (4 * d * r))
    l2m = ContinualAgent(dt=agent, method=METHODS["l2m"], cfg=CFG)
    assert l2m.trainable_parameters(sequence_runs["l2m"]["start"]) == pool * per_entry
    single = ContinualAgent(dt=agent, method=METHODS["lora"], cfg=CFG)
    assert (
        single.trainable_parameters(single.start(sequence_runs["l2m"]["start"].model.params["backbone"], jax.random.PRNGKey(0)))
        == per_entry
    )
    backbone = sum(x.size for x in jax.tree.leaves(sequence_runs["full-ft"]["start"].model.params["backbone"]))
    full = ContinualAgent(dt=agent, method=METHODS["full-ft"], cfg=CFG)
    assert full.trainable_parameters(sequence_runs["full-ft"]["start"]) == backbone


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_fisher_weighted_drift():
    agent = tiny_agent()
    learner = ContinualAgent(dt=agent, method=METHODS["ewc"], cfg=CFG)
    data = TaskData(agent.training_data(two_tasks()), jnp.zeros(3), None, ROWS, 1)
    # jitted as the protocol runs them (op-by-op dispatch of a DT's gradients costs more than compiling them)
    end_task, loss = jax.jit(learner.end_task, static_argnums=(2, 3)), jax.jit(learner.loss, static_argnums=(3, 4))
    state = end_task(learner.start(agent.init(jax.random.PRNGKey(0)).model.params, None), data.trajectory, 0, ROWS,
                     jax.random.PRNGKey(1))  # fmt: skip
    assert all(bool(jnp.all(f >= 0)) for f in jax.tree.leaves(state.fisher))
    assert sum(float(f.sum()) for f in jax.tree.leaves(state.fisher)) > 0
    batch = agent.windows(data.trajectory, jnp.arange(8))
    params = state.model.params
    at_anchor, (action_loss, _) = loss(params, state, batch, 0, False, None)
    np.testing.assert_allclose(at_anchor, action_loss, rtol=1e-6)
    moved = {"backbone": jax.tree.map(lambda p: p + 0.01, params["backbone"]), "pool": {}}
    fisher = sum(float(f.sum()) for f in jax.tree.leaves(state.fisher))
    total, (action_loss, _) = loss(moved, state, batch, 0, False, None)
    np.testing.assert_allclose(total - action_loss, 0.5 * CFG.ewc_weight * fisher * 1e-4, rtol=1e-3)


# ----- bad input -----


def test_a_sequence_task_outside_the_family_is_refused():
    with pytest.raises(ConfigError, match="not in PathWorld's continual suite"):
        dataclasses.replace(CFG, sequence=("continual-00", "fly-to-the-moon")).validate()


def test_a_pool_smaller_than_the_sequence_is_refused():
    with pytest.raises(ConfigError, match="pool_size 3 is smaller than the sequence"):
        dataclasses.replace(CFG, pool_size=3).validate()
    dataclasses.replace(CFG, pool_size=3, methods=("full-ft", "lora")).validate()  # no per-task pool: fine


def test_the_protocol_env_tells_tasks_apart_and_an_unknown_task_info_is_refused():
    from envs.dynamics import DynamicsParams
    from envs.pathworld import suites
    from jaxrl.protocols import continual

    # push and pick-place of the same object on the same layout share their scene: only the instruction differs
    env = continual.make_env(CFG)
    push, pick = (DynamicsParams(suites.variant_params(suites.Variant(task, layout=3, target=1)), 0.0)
                  for task in ("push", "pick-place"))  # fmt: skip
    (obs_push, _), (obs_pick, _) = (env.reset(jax.random.PRNGKey(0), p) for p in (push, pick))
    differ = np.flatnonzero(np.asarray(obs_push) != np.asarray(obs_pick))
    np.testing.assert_array_equal(differ, [env.spec.obs_dim - 4])  # the verb token (both name object 1)
    blind = continual.make_env(dataclasses.replace(CFG, task_info="none"))
    np.testing.assert_array_equal(blind.reset(jax.random.PRNGKey(0), push)[0], blind.reset(jax.random.PRNGKey(0), pick)[0])
    with pytest.raises(ConfigError, match="task_info must be one of none, onehot, tokens, got 'words'"):
        dataclasses.replace(CFG, task_info="words").validate()


def test_pretraining_takes_the_kinds_in_turn_and_bad_kinds_or_labels_are_refused():
    tasks = [v.task for v in pretrain_variants(CFG)]
    assert tasks == ["reach", "pick-place", "touch", "avoid"] * 2  # push is left out by default
    assert len({v.name for v in pretrain_variants(CFG)}) == 8
    with pytest.raises(ConfigError, match="kinds must name PathWorld tasks"):
        dataclasses.replace(CFG, kinds=("reach", "fly")).validate()
    with pytest.raises(ConfigError, match=r"'push-L101-obj2'\] are not of the protocol's kinds"):
        dataclasses.replace(CFG, sequence=("reach-L100-obj1", "push-L101-obj2")).validate()
    with pytest.raises(ConfigError, match=r"pretrain_tasks must be in 1..16 \(the pretrain variants of \['reach', 'touch'\]\)"):
        dataclasses.replace(CFG, kinds=("reach", "touch"), sequence=("reach-L100-obj1",), pretrain_tasks=17).validate()
    with pytest.raises(ConfigError, match="labels must be one of taken, expert, got 'noisy'"):
        dataclasses.replace(CFG, labels="noisy").validate()


def test_unknown_method_is_refused():
    with pytest.raises(ConfigError, match="unknown continual method"):
        dataclasses.replace(CFG, methods=("l2m", "adapters")).validate()


def test_a_pretrained_checkpoint_of_another_size_is_refused(tmp_path):
    cfg = dataclasses.replace(CFG, embedding_dim=32, num_layers=1, num_heads=2)
    agent = tiny_agent()
    backbone = agent.init(jax.random.PRNGKey(0)).model.params
    save_pretrained(tmp_path / "pretrained", cfg, agent, backbone)
    assert_trees_equal(load_pretrained(tmp_path / "pretrained", cfg, agent, jax.random.PRNGKey(1)), backbone)
    bigger = dataclasses.replace(cfg, embedding_dim=64)
    with pytest.raises(ConfigError, match="another size .*embedding_dim: checkpoint 32, config 64"):
        load_pretrained(tmp_path / "pretrained", bigger, tiny_agent(embedding_dim=64), jax.random.PRNGKey(1))
    with pytest.raises(ConfigError, match="not a pretrained DT checkpoint"):
        load_pretrained(tmp_path, cfg, agent, jax.random.PRNGKey(1))


# ----- the report -----


def test_continual_metrics_by_hand():
    from jaxrl.protocols import continual_report as report

    # one seed, 2 pretraining tasks, 3 sequence tasks; rows: before, after T1, after T2, after T3
    success = np.array([[
        [0.8, 0.6, 0.0, 0.0, 0.0],
        [0.8, 0.4, 0.9, 0.0, 0.0],
        [0.4, 0.4, 0.5, 0.7, 0.1],
        [0.2, 0.2, 0.3, 0.6, 1.0],
    ]])  # fmt: skip
    selections = np.zeros((1, 5, 4))
    selections[0, 2:, :] = [[0.75, 0.25, 0, 0], [0, 0, 1.0, 0], [0, 0.5, 0, 0.5]]
    result = {"success": success, "selections": selections, "claimed": np.array([[0, 2, 3]]), "trainable_parameters": 7}
    m = report.metrics(result, pretrain_tasks=2)
    np.testing.assert_allclose(m["final"], [(0.3 + 0.6 + 1.0) / 3])
    np.testing.assert_allclose(m["retention"], [0.2 / 0.7])
    # T1: best of after-T1, after-T2 = 0.9, final 0.3; T2: best after-T2 = 0.7, final 0.6 (T3 is not counted)
    np.testing.assert_allclose(m["forgetting"], [((0.9 - 0.3) + (0.7 - 0.6)) / 2])
    np.testing.assert_allclose(m["earlier_kept"], [(0.3 + 0.6) / (0.9 + 0.7)])
    np.testing.assert_allclose(m["own_entry"], [(0.75 + 1.0 + 0.5) / 3])
    np.testing.assert_allclose(m["distinct_entries"], [1.0])
    verdicts = {v.claim[:3]: v.holds for v in report.claims({"full-ft": result, "l2m": result}, 2)}
    assert verdicts["(1)"] is True and verdicts["(2)"] is False and verdicts["(4)"] is True
    assert "(3)" not in verdicts and "(5)" not in verdicts  # their comparators were not run
    assert "| Full FT | 0.63 [0.63, 0.63] | 0.35 [0.35, 0.35] |" in report.results_table({"full-ft": result}, 2)


@pytest.mark.slow(
    reason="a whole L2M protocol run, tiny: PathWorld data, pretraining, two methods and their evaluations (~2 min)",
    companion="tests/test_stage.py::test_a_killed_stage_resumes_to_the_same_result_and_a_finished_one_is_restored",
)
def test_a_tiny_protocol_run_scores_every_method_on_the_same_episodes_and_resumes(tmp_path):
    from envs.pathworld.expert import expert_action
    from jaxrl.protocols import continual

    sequence = ContinualConfig().sequence[:2]
    cfg = ContinualConfig(sequence=sequence, pretrain_tasks=2, transitions_per_task=300, embedding_dim=16, num_layers=1,
                          num_heads=2, batch_size=16, pretrain_steps=40, steps_per_task=20, pool_size=4, rank=2,
                          eval_episodes=2, eval_pretrain_tasks=2, seeds=2, fisher_samples=16).validate()  # fmt: skip
    env = continual.make_env(cfg)
    agent = continual.make_agent(cfg, env)
    data = continual.build_data(cfg, agent, env, jax.random.PRNGKey(0))
    # DART labels: every row's action is the noiseless expert's in that row's state (the rollouts were noisy)
    task_of_row = np.arange(len(data.trajectory.actions)) // data.rows
    physics = jax.tree.map(lambda x: x[task_of_row], data.params.physics)
    clean = jax.vmap(expert_action, (0, 0, None))(physics, data.trajectory.observations, jax.random.PRNGKey(0))
    np.testing.assert_allclose(data.trajectory.actions, clean, atol=1e-6)
    quiet = lambda *_: None  # noqa: E731
    backbone = continual.pretrain(cfg, agent, data, jax.random.PRNGKey(1), tmp_path / "pretrain", log=quiet)
    run = lambda name, where, **kw: continual.run_method(  # noqa: E731
        name, cfg, agent, env, data, backbone, jax.random.PRNGKey(2), tmp_path / where, log=quiet, **kw
    )
    l2m, full = run("l2m", "l2m"), run("full-ft", "full-ft")
    tasks = cfg.eval_pretrain_tasks + len(sequence)
    assert l2m["success"].shape == (2, 3, tasks) and l2m["claimed"].shape == (2, 2)
    # before fine-tuning, L2M (zero-B LoRA) is the frozen model exactly, and every method meets the same
    # episodes: the two score the same, episode for episode
    np.testing.assert_array_equal(l2m["returns"][:, 0], full["returns"][:, 0])
    assert np.any(l2m["returns"][:, 0] != l2m["returns"][:, 1])  # fine-tuning changed what it does
    # killed inside the second task, the method's stage resumes to the same scores
    with pytest.raises(Killed):  # chunk 13 of 20: the second task's fourth
        run("l2m", "l2m-killed", hooks=(kill_after(13),))
    resumed = run("l2m", "l2m-killed")
    for k in ("success", "returns", "selections", "claimed"):
        np.testing.assert_array_equal(resumed[k], l2m[k])


def test_learning_rate_warms_up_then_decays_by_cosine_and_restarts_with_each_task():
    from jaxrl.agents.optim import warmup_cosine

    lr = lambda step: float(warmup_cosine(1.0, step, 100, 10, 0.01))  # noqa: E731
    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0) and lr(10) == pytest.approx(1.0)
    assert lr(55) == pytest.approx(0.01 + 0.99 * 0.5) and lr(100) == pytest.approx(0.01) and lr(500) == pytest.approx(0.01)
    agent = tiny_agent()
    data = TaskData(None, None, None, ROWS, 1)
    task = continual_agent(CFG, agent, METHODS["l2m"], data)  # each task its own schedule over steps_per_task
    per_task = CFG.steps_per_task
    assert float(task.learning_rate_at(100)) == float(task.learning_rate_at(per_task + 100)) < CFG.learning_rate
    pre = continual_agent(CFG, agent, PRETRAIN, data, span="pretrain")
    assert float(pre.learning_rate_at(CFG.pretrain_steps)) == pytest.approx(CFG.min_learning_rate)


def test_continual_claims_are_judged_from_paired_seed_intervals():
    from jaxrl.protocols import continual_report as report

    def method(finals):  # 2 seeds, 4 evaluations, 2 pretraining + 3 sequence tasks
        return {"success": np.stack([np.tile([[0.5, 0.5, f, f, f]], (4, 1)) for f in finals]), "trainable_parameters": 1}

    def oracle_verdict(oracle_finals):
        verdicts = report.claims({"l2m": method([0.5, 0.5]), "l2m-oracle": method(oracle_finals)}, 2)
        return next(v.holds for v in verdicts if v.claim.startswith("(5)"))

    assert oracle_verdict([0.6, 0.7]) is True
    assert oracle_verdict([0.2, 0.3]) is False
    assert oracle_verdict([0.6, 0.4]) is None  # ahead on one seed, behind on the other: inconclusive
