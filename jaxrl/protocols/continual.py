"""Continual adaptation of a pretrained multi-task Decision Transformer (the L2M protocol, Schmied et al.
2023), on PathWorld's task suites.

1. Data: every task variant (the `pretrain` suite and the first tasks of the `continual` sequence) gets a
   dataset from the scripted expert at several noise levels, so return conditioning has something to pick.
2. Pretraining: one DT on every pretraining task's data at once (one backbone, no task identity in the
   observation). It is an ordinary Orbax checkpoint that every method starts from.
3. Fine-tuning, offline and task by task through the sequence, for each method of `METHODS` (L2M, its
   oracle, L2P, full fine-tuning, one LoRA, EWC; the multi-task model is trained once on everything).
   A method is the same model tree {"backbone": DT params, "pool": modulation pool} with an optax mask
   saying what trains, a rule for picking the pool entry, and optionally the EWC penalty.
4. After each task every method is evaluated (success rate, vmapped over tasks, episodes and seeds) on
   every sequence task and on the pretraining tasks: a performance matrix per method.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.dynamics import DynamicsParams
from envs.pathworld import suites
from envs.pathworld.expert import expert_action
from jaxrl.agents import ConfigError
from jaxrl.agents.dt import DT, DTBatch, masked_action_error
from jaxrl.agents.optim import Trainable
from jaxrl.engine.checkpoint import Checkpointer
from jaxrl.engine.evaluation import evaluate_policy_with_memory
from jaxrl.protocols import modulation as pool_ops
from jaxrl.protocols.suite import collect


@dataclasses.dataclass(frozen=True)
class Method:
    pool: str | None  # "lora", "prompt" or None (no pool)
    select: str  # the entry each window uses: "retrieve" (keys), "task" (oracle), "first" (one shared entry)
    backbone: bool  # the backbone trains
    ewc: bool = False
    single_entry: bool = False


METHODS = {
    "l2m": Method("lora", "retrieve", backbone=False),
    "l2m-oracle": Method("lora", "task", backbone=False),
    "l2p": Method("prompt", "retrieve", backbone=False),
    "full-ft": Method(None, "none", backbone=True),
    "lora": Method("lora", "first", backbone=False, single_entry=True),
    "ewc": Method(None, "none", backbone=True, ewc=True),
    "multitask": Method(None, "none", backbone=True),  # trained once on every task: the upper bound
}
PRETRAIN = Method(None, "none", backbone=True)
MODEL_FIELDS = ("embedding_dim", "num_layers", "num_heads", "context")


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
    sequence: tuple[str, ...] = tuple(v.name for v in suites.suite("continual")[:6])  # variant names
    pretrain_tasks: int = 40  # the first n variants of the `pretrain` suite
    transitions_per_task: int = 6_000
    noises: tuple[float, ...] = (3.0, 1.0, 0.1)  # expert action noise, equal parts of each task's data
    embedding_dim: int = 64
    num_layers: int = 3
    num_heads: int = 4
    context: int = 5  # the reference's context length
    dropout: float = 0.1
    reward_scale: float = 0.01
    batch_size: int = 128
    pretrain_steps: int = 4_000
    pretrain_learning_rate: float = 1e-3
    steps_per_task: int = 800
    learning_rate: float = 1e-3
    pool_size: int = 12
    rank: int = 8
    prompt_length: int = 5
    pull_weight: float = 0.5  # lambda of the key pull term
    ewc_weight: float = 100.0
    fisher_samples: int = 512
    eval_episodes: int = 8
    eval_pretrain_tasks: int = 10  # retention is measured on this many pretraining tasks, spread over the suite
    seeds: int = 3
    methods: tuple[str, ...] = tuple(METHODS)
    seed: int = 0

    def validate(self) -> "ContinualConfig":
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ConfigError(f"unknown continual method(s) {unknown}; methods: {', '.join(METHODS)}")
        sequence_variants(self.sequence)
        if not 1 <= self.pretrain_tasks <= len(suites.suite("pretrain")):
            raise ConfigError(f"pretrain_tasks must be in 1..{len(suites.suite('pretrain'))}, got {self.pretrain_tasks}")
        pooled = [m for m in self.methods if METHODS[m].pool and not METHODS[m].single_entry]
        if pooled and self.pool_size < len(self.sequence):
            raise ConfigError(
                f"pool_size {self.pool_size} is smaller than the sequence ({len(self.sequence)} tasks): "
                f"{', '.join(pooled)} need an entry per task at least"
            )
        if not 1 <= self.eval_pretrain_tasks <= self.pretrain_tasks:
            raise ConfigError(
                f"eval_pretrain_tasks must be in 1..pretrain_tasks ({self.pretrain_tasks}), got {self.eval_pretrain_tasks}"
            )
        for name in ("transitions_per_task", "batch_size", "pretrain_steps", "steps_per_task", "seeds", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embedding_dim % self.num_heads:
            raise ConfigError(f"num_heads ({self.num_heads}) must divide embedding_dim ({self.embedding_dim})")
        return self


def evaluation_tasks(cfg: ContinualConfig) -> np.ndarray:
    """The task indices every evaluation covers: `eval_pretrain_tasks` pretraining tasks evenly spaced (the
    suite lists 8 variants of each task kind in turn, so every kind is covered), then the whole sequence."""
    pretrain = np.linspace(0, cfg.pretrain_tasks, cfg.eval_pretrain_tasks, endpoint=False).astype(int)
    return np.concatenate([pretrain, cfg.pretrain_tasks + np.arange(len(cfg.sequence))])


def sequence_variants(names) -> list[suites.Variant]:
    known = {v.name: v for v in suites.suite("continual")}
    missing = [n for n in names if n not in known]
    if missing or not names:
        raise ConfigError(f"sequence task(s) {missing} are not in PathWorld's continual suite; its tasks: {', '.join(known)}")
    return [known[n] for n in names]


# ----- data -----


@struct.dataclass
class TaskData:
    """Every task's rows, task after task, `rows` each (`trajectory`: the DT's per-row arrays)."""

    trajectory: object
    targets: jax.Array  # [T] the return each task conditions on: its best episode in the data (raw units)
    params: object  # the env's params of every task, stacked [T]
    rows: int = struct.field(pytree_node=False)
    pretrain_tasks: int = struct.field(pytree_node=False)


def build_data(cfg: ContinualConfig, agent: DT, env, key) -> TaskData:
    """The scripted expert's data for the pretraining tasks (train split) and the sequence (held-out layouts
    of the continual suite), all in one vmapped program."""
    variants = [(v, "train") for v in suites.suite("pretrain")[: cfg.pretrain_tasks]]
    variants += [(v, "train") for v in sequence_variants(cfg.sequence)]
    stacked = [suites.variant_params(v, split, palette=i) for i, (v, split) in enumerate(variants)]
    params = DynamicsParams(jax.tree.map(lambda *xs: jnp.stack(xs), *stacked), jnp.zeros(len(variants)))  # no joint noise
    parts = len(cfg.noises)
    part = -(-cfg.transitions_per_task // parts)

    def one(task_params, noise, k):
        policy = lambda obs, k: jax.vmap(expert_action, (None, 0, 0, None))(  # noqa: E731
            task_params.physics, obs, jax.random.split(k, obs.shape[0]), noise
        )
        return collect(env, policy, k, part, 16, params=task_params)

    tasks = len(variants)
    noises = jnp.tile(jnp.asarray(cfg.noises, jnp.float32), tasks)
    task_params = jax.tree.map(lambda x: jnp.repeat(x, parts, axis=0), params)
    data = jax.jit(jax.vmap(one))(task_params, noises, jax.random.split(key, tasks * parts))
    flat = jax.tree.map(lambda x: x.reshape(tasks * parts * part, *x.shape[2:]), data)  # task-major rows
    returns = [
        jax.tree.map(lambda x, t=t: x[t * parts * part : (t + 1) * parts * part], flat).episode_returns().max()
        for t in range(tasks)
    ]
    return TaskData(agent.training_data(flat), jnp.asarray(returns, jnp.float32), params, parts * part, cfg.pretrain_tasks)


# ----- one method's model, loss and training -----


@struct.dataclass
class Learner:
    model: Trainable  # params {"backbone", "pool"}
    usage: pool_ops.Usage
    anchor: object  # EWC: the backbone after the last task (None otherwise)
    fisher: object  # EWC: the summed diagonal Fisher of every task so far (None otherwise)


@dataclasses.dataclass(frozen=True)
class ContinualLearner:
    """One method's functions over a `Learner`, for a DT of `agent`'s size."""

    agent: DT
    method: Method
    cfg: ContinualConfig

    @property
    def pool_size(self) -> int:
        return 1 if self.method.single_entry else self.cfg.pool_size

    def optimizer(self, params) -> optax.GradientTransformation:
        """The DT's AdamW on what the method trains; the rest gets zero updates (bit-identical)."""
        labels = {
            "backbone": jax.tree.map(lambda _: "train" if self.method.backbone else "frozen", params["backbone"]),
            "pool": jax.tree.map(lambda _: "train", params["pool"]),
        }
        return optax.multi_transform({"train": self.agent.optimizer(), "frozen": optax.set_to_zero()}, labels)

    def init(self, backbone, key) -> Learner:
        pool = {}
        if self.method.pool:
            a = self.agent
            pool = pool_ops.init_pool(key, self.method.pool, self.pool_size, a.num_layers, a.embedding_dim,
                                      self.cfg.rank, self.cfg.prompt_length)  # fmt: skip
        params = {"backbone": backbone, "pool": pool}
        ewc = self.method.ewc
        return Learner(
            Trainable.create(params, self.optimizer(params)),
            pool_ops.Usage.create(self.pool_size),
            anchor=backbone if ewc else None,
            fisher=jax.tree.map(jnp.zeros_like, backbone) if ewc else None,
        )

    def trainable_parameters(self, learner: Learner) -> int:
        params = learner.model.params
        return pool_ops.parameter_count(params["pool"]) + (
            pool_ops.parameter_count(params["backbone"]) if self.method.backbone else 0
        )

    def entries(self, params, usage, batch: DTBatch, entry, penalise):
        """The pool entry of each window [B] and the cosine to its key [B] (None unless retrieved)."""
        batch_size = batch.mask.shape[0]
        if self.method.select == "retrieve":
            q = pool_ops.query(self.agent.state_tokens(params["backbone"], batch), batch.mask)
            return pool_ops.select(pool_ops.cosine_similarity(q, params["pool"]["keys"]), usage, penalise)
        if self.method.select == "task":
            return jnp.broadcast_to(jnp.maximum(entry, 0), (batch_size,)).astype(jnp.int32), None
        return jnp.zeros(batch_size, jnp.int32), None

    def predict(self, params, usage, batch: DTBatch, entry, penalise, key=None):
        """(actions [B, K, A], selected entries [B], cosine to the selected key [B] or None)."""
        backbone, pool = params["backbone"], params["pool"]
        index, cos = self.entries(params, usage, batch, entry, penalise)
        if self.method.pool is None:
            return self.agent.predict(backbone, batch, key), index, None
        mod = pool_ops.modulation(pool, index)
        if self.method.select == "task":  # entry -1 (a pretraining task): scale 0, the frozen model exactly
            mod = mod.replace(scale=jnp.where(entry >= 0, mod.scale, 0.0))
        return self.agent.predict(backbone, batch, key, mod), index, cos

    def loss(self, params, learner: Learner, batch, entry, penalise, key):
        actions, index, cos = self.predict(params, learner.usage, batch, entry, penalise, key)
        action_loss = masked_action_error(actions, batch)
        loss = action_loss
        if cos is not None:  # pull the selected keys towards their queries
            loss = loss - self.cfg.pull_weight * jnp.mean(cos)
        if self.method.ewc:
            drift = jax.tree.map(lambda f, p, a: jnp.sum(f * (p - a) ** 2), learner.fisher, params["backbone"], learner.anchor)
            loss = loss + 0.5 * self.cfg.ewc_weight * sum(jax.tree.leaves(drift))
        return loss, (action_loss, index)

    def train(self, learner: Learner, data: TaskData, lo, hi, entry, penalise, key, steps: int, learning_rate):
        """`steps` updates on windows starting in rows [lo, hi); `entry` is the oracle's pool entry."""

        def update(learner: Learner, key):
            k_rows, k_drop = jax.random.split(key)
            batch = self.agent.windows(data.trajectory, jax.random.randint(k_rows, (self.cfg.batch_size,), lo, hi))
            grads, (action_loss, index) = jax.grad(self.loss, has_aux=True)(
                learner.model.params, learner, batch, entry, penalise, k_drop
            )
            model = learner.model.apply_gradients(grads, learning_rate, self.optimizer(learner.model.params))
            usage = pool_ops.record_usage(learner.usage, index) if self.method.select == "retrieve" else learner.usage
            return learner.replace(model=model, usage=usage), action_loss

        return jax.lax.scan(update, learner, jax.random.split(key, steps))

    def end_task(self, learner: Learner, data: TaskData, lo, hi, key) -> Learner:
        """EWC: add this task's diagonal Fisher (mean squared per-window gradient of the action loss) and
        anchor the backbone here."""
        if not self.method.ewc:
            return learner
        backbone = learner.model.params["backbone"]
        batch = self.agent.windows(data.trajectory, jax.random.randint(key, (self.cfg.fisher_samples,), lo, hi))

        def window_grad(window):
            single = jax.tree.map(lambda x: x[None], window)
            return jax.grad(self.agent.action_loss)(backbone, single)

        squared = jax.lax.map(lambda w: jax.tree.map(jnp.square, window_grad(w)), batch, batch_size=64)
        fisher = jax.tree.map(lambda f, g: f + jnp.mean(g, axis=0), learner.fisher, squared)
        return learner.replace(fisher=fisher, anchor=backbone)

    def start_task(self, learner: Learner) -> Learner:
        """A new task: the usage penalty's weights are taken, and the optimizer starts afresh (each task is
        its own fine-tuning run; carried Adam moments would keep moving an earlier task's pool entry for a
        few dozen steps after its gradients stop)."""
        params = learner.model.params
        return learner.replace(usage=pool_ops.switch_task(learner.usage), model=Trainable.create(params, self.optimizer(params)))

    def evaluate(self, learner: Learner, env, data: TaskData, tasks, key):
        """Success rate and return [len(tasks)] of the tasks (indices; each conditioned on its own target
        return), `eval_episodes` each."""
        agent, params, usage = self.agent, learner.model.params, learner.usage
        entries = tasks - data.pretrain_tasks  # the oracle's entries; negative: a pretraining task, none

        def task(task_params, target, entry, key):
            def policy(obs, key, carry):
                predict = lambda w: self.predict(params, usage, w, entry, False)[0]  # noqa: E731
                return agent.act_with_carry(None, obs, key, carry, predict=predict)

            def init_carry(obs):
                carry = agent.initial_carry(None, obs)
                return carry.replace(target=jnp.full_like(carry.target, target * agent.reward_scale))

            returns, success = evaluate_policy_with_memory(
                env, policy, key, self.cfg.eval_episodes, task_params,
                init_carry=init_carry, observe=agent.observe, outcome="success",
            )  # fmt: skip
            return success.mean(), returns.mean()

        task_params = jax.tree.map(lambda x: x[tasks], data.params)
        return jax.vmap(task)(task_params, data.targets[tasks], entries, jax.random.split(key, tasks.shape[0]))

    def selections(self, learner: Learner, data: TaskData, tasks, key, windows: int = 256):
        """[len(tasks), P]: the fraction of each task's data windows that select each pool entry (no penalty)."""

        def task(t, key):
            start = t * data.rows + jax.random.randint(key, (windows,), 0, data.rows)
            index, _ = self.entries(learner.model.params, learner.usage, self.agent.windows(data.trajectory, start), 0, False)
            return jnp.bincount(index, length=self.pool_size) / windows

        return jax.vmap(task)(tasks, jax.random.split(key, tasks.shape[0]))


# ----- the protocol -----


def make_agent(cfg: ContinualConfig, env) -> DT:
    total = cfg.pretrain_steps
    return DT(embedding_dim=cfg.embedding_dim, num_layers=cfg.num_layers, num_heads=cfg.num_heads, context=cfg.context,
              embedding_dropout=cfg.dropout, attention_dropout=cfg.dropout, residual_dropout=cfg.dropout,
              reward_scale=cfg.reward_scale, warmup_steps=0.1 * total, target_return=0.0).configure(env.spec, total)  # fmt: skip


def model_size(cfg: ContinualConfig, agent: DT) -> dict:
    """What a pretrained checkpoint must match to be loaded (its model.json)."""
    return {name: getattr(cfg, name) for name in MODEL_FIELDS} | {"obs_dim": agent.obs_dim, "action_dim": agent.action_dim}


def save_pretrained(directory: Path, cfg: ContinualConfig, agent: DT, backbone) -> None:
    checkpointer = Checkpointer(directory, max_to_keep=1)
    checkpointer.save(cfg.pretrain_steps, {"backbone": backbone})
    checkpointer.wait()
    checkpointer.close()
    (Path(directory) / "model.json").write_text(json.dumps(model_size(cfg, agent), indent=1))


def load_pretrained(directory: Path, cfg: ContinualConfig, agent: DT, key):
    """The pretrained backbone; a checkpoint of another model size is refused before anything compiles."""
    info_path = Path(directory) / "model.json"
    if not info_path.exists():
        raise ConfigError(f"{directory}: not a pretrained DT checkpoint (no model.json)")
    saved = json.loads(info_path.read_text())
    wanted = model_size(cfg, agent)
    different = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if different:
        detail = ", ".join(f"{k}: checkpoint {a}, config {b}" for k, (a, b) in different.items())
        raise ConfigError(f"{directory}: the pretrained DT has another size ({detail})")
    abstract = {"backbone": jax.eval_shape(agent.init, key).model.params}
    checkpointer = Checkpointer(directory, max_to_keep=1)
    _, restored = checkpointer.restore(abstract)
    checkpointer.close()
    return restored["backbone"]


def pretrain(cfg: ContinualConfig, agent: DT, data: TaskData, key, log=print):
    learner = ContinualLearner(agent, PRETRAIN, cfg)
    k_init, k_train = jax.random.split(key)
    state = learner.init(agent.init(k_init).model.params, k_init)
    hi = data.pretrain_tasks * data.rows
    chunk = max(cfg.pretrain_steps // 8, 1)

    @functools.partial(jax.jit, static_argnums=4)
    def run(state, data, start, key, length: int):
        def update(state, inputs):
            step, k = inputs
            lr = cfg.pretrain_learning_rate / agent.learning_rate * agent.learning_rate_at(step)
            state, loss = learner.train(state, data, 0, hi, 0, False, k, 1, lr)
            return state, loss[0]

        return jax.lax.scan(update, state, (start + jnp.arange(length), jax.random.split(key, length)))

    t0, done = time.perf_counter(), 0
    for k in jax.random.split(k_train, -(-cfg.pretrain_steps // chunk)):
        length = min(chunk, cfg.pretrain_steps - done)  # the last chunk may be shorter (one more compile)
        state, losses = run(state, data, done, k, length)
        done += length
        log(f"  pretrain {done}/{cfg.pretrain_steps}: action loss {float(losses.mean()):.4f} ({time.perf_counter() - t0:.0f} s)")
    return state.model.params["backbone"]


def run_method(name: str, cfg: ContinualConfig, agent: DT, env, data: TaskData, backbone, key, log=print) -> dict:
    """Fine-tune `name` through the sequence for every seed (one vmapped program); returns its results:
    success[seed, after task i (0 = before), task of `evaluation_tasks`], returns, selections (the same tasks),
    the entry each sequence task claimed, trainable parameters, time."""
    method = METHODS[name]
    learner = ContinualLearner(agent, method, cfg)
    seeds, rows, p = cfg.seeds, data.rows, data.pretrain_tasks
    k_init, k_run = jax.random.split(key)
    state = jax.vmap(lambda k: learner.init(backbone, k))(jax.random.split(k_init, seeds))
    # the data is an argument, not a constant baked into the programs
    train = jax.jit(jax.vmap(lambda s, d, lo, hi, entry, penalise, steps, k: learner.train(
        s, d, lo, hi, entry, penalise, k, steps, cfg.learning_rate), in_axes=(0, None, None, None, None, None, None, 0)),
        static_argnums=6)  # fmt: skip
    end_task = jax.jit(jax.vmap(learner.end_task, in_axes=(0, None, None, None, 0)))
    evaluate = jax.jit(jax.vmap(lambda s, d, k: learner.evaluate(s, env, d, tasks, k), in_axes=(0, None, 0)))
    keys = lambda k: jax.random.split(k, seeds)  # noqa: E731
    tasks = jnp.asarray(evaluation_tasks(cfg))
    p_eval = cfg.eval_pretrain_tasks
    selections = jax.jit(jax.vmap(lambda s, d, k: learner.selections(s, d, tasks, k), in_axes=(0, None, 0)))
    t0 = time.perf_counter()
    success, returns, claimed = [], [], []

    def record(k):
        s, r = evaluate(state, data, keys(k))
        success.append(np.asarray(s))
        returns.append(np.asarray(r))

    k_eval, k_fisher, k_train = (jax.random.split(k, len(cfg.sequence) + 1) for k in jax.random.split(k_run, 3))
    if name == "multitask":  # every task's data at once, the sequence's total updates
        record(k_eval[0])
        steps = cfg.steps_per_task * len(cfg.sequence)
        state, _ = train(state, data, 0, (p + len(cfg.sequence)) * rows, 0, False, steps, keys(k_train[0]))
        record(k_eval[1])
    else:
        state = end_task(state, data, 0, p * rows, keys(k_fisher[0]))  # EWC's anchor: the pretraining tasks
        record(k_eval[0])
        for i in range(len(cfg.sequence)):
            if i > 0:
                state = jax.vmap(learner.start_task)(state)
            lo = (p + i) * rows
            state, losses = train(state, data, lo, lo + rows, i, i > 0, cfg.steps_per_task, keys(k_train[i]))
            state = end_task(state, data, lo, lo + rows, keys(k_fisher[i + 1]))
            record(k_eval[i + 1])
            if method.select == "retrieve":  # the entry this task claimed: what its windows select now
                claimed.append(np.asarray(selections(state, data, keys(k_fisher[i + 1])))[:, p_eval + i].argmax(-1))
            log(f"  {name} task {i + 1}/{len(cfg.sequence)} {cfg.sequence[i]}: action loss "
                f"{float(losses[:, -100:].mean()):.4f}, success {success[-1][:, p_eval + i].mean():.2f} "
                f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    result = {
        "success": np.stack(success, axis=1),  # [seeds, evaluations, tasks]
        "returns": np.stack(returns, axis=1),
        "selections": np.asarray(selections(state, data, keys(k_run))),  # [seeds, tasks, pool] at the end
        "trainable_parameters": learner.trainable_parameters(jax.tree.map(lambda x: x[0], state)),
        "seconds": time.perf_counter() - t0,
    }
    if claimed:
        result["claimed"] = np.stack(claimed, axis=1)  # [seeds, sequence tasks]
    return result
