"""The phases a training run is made of, as pure per-member functions (the trainer vmaps them).

A phase is a frozen dataclass (what to run) with a unique `name` and four methods, so the trainer
builds any sequence of them without knowing their kinds:
    validate(agents, env, dataset) -> the agents the phase trains (or ValueError naming the problem)
    start(env, normalizer, pretrained) -> start(agent, key, agent state or None, data) -> phase state
    chunk(env, first_update, pretrained) -> chunk(agent, state, index, data) -> (state, metrics): one `lax.scan`
    updates(agents) -> how many gradient updates the phase makes (later phases continue the count)
`reads_view` says whether it learns from the agent's training view of the dataset. Three phases
cover every regime:
- `Offline`: `learn` from the dataset;
- `Online`: `collect` transitions in N environments, then `learn` from the replay buffer, or from a
  `Mix` of the dataset and the buffer;
- `OnPolicy`: `collect` a rollout of T steps in N environments, then the agent learns from it
  (`Agent.update_rollout`: PPO).
The building blocks `learn` and `collect` are exported for new phases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.data.dataset import Dataset, Normalizer
from jaxrl.engine.buffer import ReplayBuffer
from jaxrl.engine.returns import PENDING, EpisodeReturns
from jaxrl.engine.sources import DatasetSource, Mix

BUFFER_POLICIES = ("keep", "mix", "discard")
_ONLINE_KEY = 1  # folded into a member's seed for the key stream of an online phase that follows pretraining


@struct.dataclass
class OfflineState:
    agent: Any
    normalizer: Normalizer
    key: jax.Array


@struct.dataclass
class OnlineState:
    agent: Any
    normalizer: Normalizer
    buffer: ReplayBuffer
    env_state: Any
    obs: jax.Array  # the envs' current raw observations
    key: jax.Array
    episodes: Any = None  # EpisodeReturns of agents that use returns-to-go (their buffer has the column)


@dataclass(frozen=True)
class Offline:
    """`steps` updates on batches from the dataset (the agent's training view of it), `chunk_steps` per chunk.

    `agents`: the agents of this phase when they differ from the run's (the same state structure, e.g.
    a continual learner's agent for one task of its sequence); None: the run's. `key_stream`, when not 0,
    is folded into the members' keys, so offline phases that follow one another draw other batches.
    """

    steps: int
    chunk_steps: int
    batch_size: int
    agents: Any = None
    key_stream: int = 0
    name: ClassVar[str] = "offline"
    reads_view: ClassVar[bool] = True

    def validate(self, agents, env, dataset):
        agents = agents if self.agents is None else self.agents
        if agents.on_policy:
            raise ValueError(f"{agents.name} learns on-policy from its own rollouts, not from a dataset")
        if dataset is None:
            raise ValueError("an offline phase needs a dataset")
        return agents

    def start(self, env, normalizer: Normalizer, pretrained: bool):
        return offline_start(self, normalizer, pretrained)

    def chunk(self, env, first_update: int, pretrained: bool):
        return offline_chunk(self, first_update)

    def updates(self, agents) -> int:
        return self.steps


@dataclass(frozen=True)
class Online:
    """`steps` environment steps over `num_envs` envs, `chunk_steps` per chunk; after every step of all
    envs, `utd * num_envs` updates (none in the first `learning_starts` env steps of the phase).

    During `learning_starts` a fresh agent acts uniformly at random; an agent that starts pretrained (an
    offline phase before, or a warm start) acts with its own policy, frozen as no update is made: WSRL's
    warm-up. Batches come from the buffer; with `buffer="mix"`, `offline_fraction` of every batch comes
    from the dataset instead, and `buffer="keep"` starts the buffer with a copy of the dataset.
    `agents` are the agents of this phase when it trains with other settings than the run's (e.g. its
    own learning rates); None: the run's.
    """

    steps: int
    chunk_steps: int
    batch_size: int
    num_envs: int = 1
    utd: float = 1.0
    learning_starts: int = 1_000
    buffer_size: int = 100_000
    buffer: Literal["keep", "mix", "discard"] = "discard"
    offline_fraction: float = 0.5
    agents: Any = None
    name: ClassVar[str] = "online"
    reads_view: ClassVar[bool] = False

    @property
    def iterations_per_chunk(self) -> int:
        return self.chunk_steps // self.num_envs

    @property
    def updates_per_iteration(self) -> int:
        return round(self.utd * self.num_envs)

    def validate(self, agents, env, dataset):
        if agents.on_policy:
            raise ValueError(f"{agents.name} learns on-policy from rollouts: give it an OnPolicy phase")
        upi = self.updates_per_iteration
        if self.chunk_steps % self.num_envs or upi < 1 or abs(upi - self.utd * self.num_envs) > 1e-9:
            raise ValueError(
                f"chunk_steps ({self.chunk_steps}) must be a multiple of num_envs ({self.num_envs}) and utd * num_envs ({self.utd} * {self.num_envs}) a positive integer"
            )
        if self.buffer not in BUFFER_POLICIES:
            raise ValueError(f"buffer must be one of {', '.join(BUFFER_POLICIES)}, got {self.buffer!r}")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction must be in [0, 1], got {self.offline_fraction}")
        if self.buffer != "discard" and dataset is None:
            raise ValueError(f"an online phase with buffer {self.buffer!r} needs a dataset")
        agents = agents if self.agents is None else self.agents
        if agents.uses_returns_to_go and self.buffer_size < self.num_envs * env.spec.max_episode_steps:
            # An episode's rows must still be its own when its returns are written back at its end.
            raise ValueError(
                f"{agents.name} writes returns-to-go back into the buffer when an episode ends, so buffer_size "
                f"({self.buffer_size}) must hold num_envs x max_episode_steps ({self.num_envs} x {env.spec.max_episode_steps})"
            )
        return agents

    def start(self, env, normalizer: Normalizer, pretrained: bool):
        return online_start(self, env, normalizer, pretrained)

    def chunk(self, env, first_update: int, pretrained: bool):
        return online_chunk(self, env, first_update, pretrained)

    def updates(self, agents) -> int:
        learning_iterations = self.steps // self.num_envs - self.learning_starts // self.num_envs
        return max(learning_iterations, 0) * self.updates_per_iteration


@dataclass(frozen=True)
class OnPolicy:
    """`steps` environment steps over `num_envs` envs, `chunk_steps` per chunk, in rollouts of the agent's
    `rollout_length` steps per env, each followed by one `update_rollout`. With `record_envs`, the
    transitions of the first `record_envs` envs are kept in `OnlineState.buffer` in time order (what a
    dataset suite's replay levels are made of); otherwise nothing is kept."""

    steps: int
    chunk_steps: int
    num_envs: int
    record_envs: int = 0
    name: ClassVar[str] = "on-policy"
    reads_view: ClassVar[bool] = False

    def validate(self, agents, env, dataset):
        if not agents.on_policy:
            raise ValueError(f"{agents.name} learns from batches, not from rollouts: give it an Online phase")
        agents.check_rollout(self.num_envs)
        per_rollout = self.num_envs * agents.rollout_length
        if self.chunk_steps % per_rollout:
            raise ValueError(
                f"chunk_steps ({self.chunk_steps}) must be a multiple of num_envs * rollout_length ({self.num_envs} * {agents.rollout_length})"
            )
        if not 0 <= self.record_envs <= self.num_envs:
            raise ValueError(f"record_envs must be in [0, num_envs={self.num_envs}], got {self.record_envs}")
        return agents

    def start(self, env, normalizer: Normalizer, pretrained: bool):
        return on_policy_start(self, env, normalizer, pretrained)

    def chunk(self, env, first_update: int, pretrained: bool):
        return on_policy_chunk(self, env)

    def updates(self, agents) -> int:
        return self.steps // (self.num_envs * agents.rollout_length)


Phase = Offline | Online | OnPolicy  # or any class with the same name, reads_view and four methods


def mean_metrics(metrics: dict) -> dict:
    return {k: jnp.mean(v) for k, v in metrics.items()}


def chained_keys(key: jax.Array, n: int):
    """(key after, [n, 2] keys): the (batch key, update key) of n updates, split off one key in turn."""

    def split(key, _):
        key, batch_key, update_key = jax.random.split(key, 3)
        return key, jnp.stack([batch_key, update_key])

    return jax.lax.scan(split, key, None, length=n)


def learn(agent, agent_state, source, keys, steps, batch_size: int):
    """One update per row of `keys` ([K, 2]: batch key, update key) on a batch from `source`; `steps` [K]
    are the update indices, unbatched under the member vmap (see `Agent.update_at`)."""

    def one(agent_state, inputs):
        (batch_key, update_key), step = inputs
        return agent.update_at(agent_state, source.sample(batch_key, agent.rows_per_update(batch_size)), update_key, step)

    return jax.lax.scan(one, agent_state, (keys, steps))


def collect(env, agent, state: OnlineState, keys, params, random_actions):
    """Step every env once with the agent's policy (or uniform random actions where `random_actions`);
    returns the new env state and observations, the stored transitions, the env infos and what the
    agent keeps of its actions (`Agent.explore`).

    The agent sees observations through the run's normaliser, and stored transitions are normalised (and
    their rewards scaled) the same way, as the offline dataset is: every source gives batches alike."""
    act_key, random_key, env_key = keys
    norm = state.normalizer
    action, extras = agent.explore(state.agent, norm(state.obs), act_key)
    if random_actions is not None:
        random_action = jax.random.uniform(random_key, action.shape, minval=-1.0, maxval=1.0)
        action = jnp.where(random_actions, random_action, action)
    num_envs = state.obs.shape[0]
    obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(env_key, num_envs), state.env_state, action, params
    )
    stored = Dataset(
        norm(state.obs),
        action,
        reward * norm.reward_scale,
        norm(info["final_obs"]),
        terminated.astype(jnp.float32),
        truncated.astype(jnp.float32),
    )
    return env_state, obs, stored, info, extras


def _finished_episodes(info):
    """(sum of the returns, count) of the episodes that ended at this step, over all envs."""
    done = info["episode_done"]
    return jnp.sum(jnp.where(done, info["episode_return"], 0.0)), jnp.sum(done)


def offline_start(spec: Offline, normalizer: Normalizer, pretrained: bool):
    def start(agent, seed_key, agent_state, data):
        if spec.key_stream:
            seed_key = jax.random.fold_in(seed_key, spec.key_stream)
        init_key, key = jax.random.split(seed_key)
        if agent_state is None:
            agent_state = agent.init(init_key)
        elif pretrained:
            agent_state = agent.enter_offline(agent_state, init_key, data["view"])
        return OfflineState(agent_state, normalizer, key)

    return start


def offline_chunk(spec: Offline, first_update: int):
    def chunk(agent, state: OfflineState, index, data):
        # The global update index, unbatched under the member vmap: a lax.cond on it is a real branch.
        steps = first_update + index * spec.chunk_steps + jnp.arange(spec.chunk_steps)
        key, keys = chained_keys(state.key, spec.chunk_steps)
        source = DatasetSource(data["view"], agent.sample)
        agent_state, metrics = learn(agent, state.agent, source, keys, steps, spec.batch_size)
        return state.replace(agent=agent_state, key=key), mean_metrics(metrics)

    return chunk


def _start_envs(agent, seed_key, agent_state, pretrained: bool, env, num_envs: int, data):
    """(agent state, first observations, env states, phase key) of an online phase: a fresh agent unless
    `pretrained`, which takes its own key stream so a warm start and the end of an offline phase continue alike."""
    if pretrained:
        _, reset_key, key = jax.random.split(jax.random.fold_in(seed_key, _ONLINE_KEY), 3)
        agent_state = agent.enter_online(agent_state)
    else:
        init_key, reset_key, key = jax.random.split(seed_key, 3)
        agent_state = agent.init(init_key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), data["collect_params"])
    return agent_state, obs, env_state, key


def _phase_dataset(agent, data):
    """The dataset as an online phase's batches have it: with returns-to-go only for an agent that uses them."""
    dataset = data["dataset"]
    if dataset is not None and not agent.uses_returns_to_go:
        dataset = dataset.replace(mc_returns=None)
    return dataset


def online_start(spec: Online, env, normalizer: Normalizer, pretrained: bool):
    spec_env = env.spec

    def start(agent, seed_key, agent_state, data):
        agent_state, obs, env_state, key = _start_envs(agent, seed_key, agent_state, pretrained, env, spec.num_envs, data)
        dataset = _phase_dataset(agent, data)
        capacity = spec.buffer_size + (dataset.size if spec.buffer == "keep" else 0)
        buffer = ReplayBuffer.create(capacity, spec_env.obs_dim, spec_env.action_dim, mc_returns=agent.uses_returns_to_go)
        if spec.buffer == "keep":
            buffer = buffer.add(dataset)
        episodes = EpisodeReturns.create(spec.num_envs, spec_env.max_episode_steps) if agent.uses_returns_to_go else None
        return OnlineState(agent_state, normalizer, buffer, env_state, obs, key, episodes)

    return start


def online_chunk(spec: Online, env, first_update: int, pretrained: bool):
    iterations, upi, num_envs = spec.iterations_per_chunk, spec.updates_per_iteration, spec.num_envs
    first_learning_iteration = spec.learning_starts // num_envs
    act_randomly = spec.learning_starts > 0 and not pretrained

    def chunk(agent, state: OnlineState, chunk_index, data):
        def iteration(state, i):
            it = chunk_index * iterations + i  # unbatched: keeps lax.cond a real branch
            env_steps = it * num_envs
            key, act_key, random_key, env_key, update_key = jax.random.split(state.key, 5)
            env_state, obs, stored, info, _ = collect(
                env,
                agent,
                state,
                (act_key, random_key, env_key),
                data["collect_params"],
                env_steps < spec.learning_starts if act_randomly else None,
            )
            episodes = state.episodes
            if episodes is None:
                buffer = state.buffer.add(stored)
            else:  # stored pending; the episode's returns are written back into its rows when it ends
                rows = state.buffer.rows_of_next(num_envs)
                buffer = state.buffer.add(stored.replace(mc_returns=jnp.full_like(stored.rewards, PENDING)))
                done = (stored.terminals + stored.timeouts) > 0
                episodes, buffer = episodes.record(buffer, rows, stored.rewards, done, agent.gamma)
            source = buffer
            if spec.buffer == "mix":
                fractions = jnp.asarray([spec.offline_fraction, 1.0 - spec.offline_fraction])
                source = Mix((DatasetSource(_phase_dataset(agent, data)), buffer), fractions)

            def updates(agent_state):
                keys = jax.vmap(jax.random.split)(jax.random.split(update_key, upi))
                steps = first_update + (it - first_learning_iteration) * upi + jnp.arange(upi)
                agent_state, metrics = learn(agent, agent_state, source, keys, steps, spec.batch_size)
                return agent_state, mean_metrics(metrics)

            _, metric_shapes = jax.eval_shape(updates, state.agent)
            skip = lambda agent_state: (agent_state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes))  # noqa: E731
            learning = env_steps + num_envs > spec.learning_starts
            agent_state, metrics = jax.lax.cond(learning, updates, skip, state.agent)
            metrics["updates"] = learning * upi
            state = state.replace(agent=agent_state, buffer=buffer, env_state=env_state, obs=obs, key=key, episodes=episodes)
            return state, (metrics, _finished_episodes(info))

        state, (metrics, (return_sums, counts)) = jax.lax.scan(iteration, state, jnp.arange(iterations))
        # Average over the iterations that made updates; NaN (not a fake 0) when none did. A NaN
        # produced by a real update still propagates, so divergence is never averaged away.
        updates = metrics.pop("updates")
        made = jnp.sum(updates > 0)
        metrics = {
            k: jnp.where(made > 0, jnp.sum(jnp.where(updates > 0, v, 0.0)) / jnp.maximum(made, 1), jnp.nan)
            for k, v in metrics.items()
        }
        metrics["updates"] = jnp.sum(updates)
        metrics["episode_return"] = return_sums.sum() / counts.sum()  # NaN when no episode ended
        return state, metrics

    return chunk


def on_policy_start(spec: OnPolicy, env, normalizer: Normalizer, pretrained: bool):
    def start(agent, seed_key, agent_state, data):
        agent_state, obs, env_state, key = _start_envs(agent, seed_key, agent_state, pretrained, env, spec.num_envs, data)
        buffer = None
        if spec.record_envs:
            capacity = spec.record_envs * (spec.steps // spec.num_envs)
            buffer = ReplayBuffer.create(capacity, env.spec.obs_dim, env.spec.action_dim)
        return OnlineState(agent_state, normalizer, buffer, env_state, obs, key)

    return start


def on_policy_chunk(spec: OnPolicy, env):
    def chunk(agent, state: OnlineState, chunk_index, data):
        def rollout_step(state, key):
            act_key, env_key = jax.random.split(key)
            env_state, obs, stored, info, extras = collect(
                env, agent, state, (act_key, act_key, env_key), data["collect_params"], None
            )
            return state.replace(env_state=env_state, obs=obs), (stored, extras, _finished_episodes(info))

        def iteration(state, _):
            key, rollout_key, update_key = jax.random.split(state.key, 3)
            state, (rollout, extras, episodes) = jax.lax.scan(
                rollout_step, state, jax.random.split(rollout_key, agent.rollout_length)
            )
            agent_state, metrics = agent.update_rollout(state.agent, rollout, extras, update_key)
            buffer = state.buffer
            if buffer is not None:  # time-major rows of the recorded envs: [T * record_envs]
                recorded = jax.tree.map(lambda x: x[:, : spec.record_envs].reshape(-1, *x.shape[2:]), rollout)
                buffer = buffer.add(recorded)
            return state.replace(agent=agent_state, buffer=buffer, key=key), (metrics, episodes)

        iterations = spec.chunk_steps // (spec.num_envs * agent.rollout_length)
        state, (metrics, (return_sums, counts)) = jax.lax.scan(iteration, state, None, length=iterations)
        metrics = mean_metrics(metrics)
        metrics["updates"] = jnp.asarray(iterations)
        metrics["episode_return"] = return_sums.sum() / counts.sum()  # NaN when no episode ended
        return state, metrics

    return chunk
