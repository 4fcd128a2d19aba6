"""HAMSTER's hierarchical-vs-flat comparison (Li et al. 2025) on PathWorld: data, training, evaluation.

1. Domains. In-domain demos come from one target domain (a few layouts and palettes, the plain camera,
   the default embodiment). Off-domain data comes from other layouts and palettes, random camera warps
   and a mismatched embodiment. Evaluation splits are held-out layouts, each with one more shift
   (palettes, camera warp, dynamics, unseen object-task combinations); no training data of any model
   uses a split's layouts, palettes or camera.
2. Data, generated on device: scripted-expert demos (successful episodes only) with each episode's path
   label; off-domain first frames with path labels and no actions ("action-free"); pointing examples;
   and off-domain expert episodes under the mismatched embodiment, whose actions only the monolithic
   model trains on. Images are rendered once (uint8); the low level's paths get N(0, path_noise) on
   x, y per row, drawn once.
3. Models (`jaxrl.protocols.hierarchy`), each trained for every seed in one vmapped program: high levels on
   in-domain paths with or without the off-domain data; low levels per path encoding and demo fraction;
   flat and monolithic action models.
4. Methods (`METHODS`) pair them: the high level is queried once on the first frame, and the low level
   follows that path for the whole episode. Every method is evaluated on every split and seed in one
   vmapped program: success, path quality (discrete Frechet distance of the predicted path to the
   expert's label), adherence (mean distance of the executed trajectory to the path) and failure
   attribution (bad path / did not follow / followed but failed).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from envs.pathworld import paths, suites
from envs.pathworld.env import MAX_EPISODE_STEPS, instruction
from envs.pathworld.expert import expert_action, path_label
from envs.pathworld.layout import generate
from envs.pathworld.render import IMAGE_SIZES, image_coordinates, render
from envs.pathworld.world import NUM_OBJECTS, TASKS, PathWorldCore, WorldParams, state_vector, unpack
from jaxrl.agents import ConfigError
from jaxrl.agents.supervised import Supervised
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import chunks_of, replicate_agent, run_stage
from jaxrl.protocols import hierarchy
from jaxrl.protocols.hierarchy import ActionModel, PathModel, PathPolicy, observed_state

ORDERS = tuple(itertools.permutations(range(NUM_OBJECTS)))
# object-task combinations: the demos see pick-place of objects 0 and 1 and four touch orders; the "combos"
# split asks for the rest (the off-domain data has every combination, as a VLM's broad data would)
SEEN_TARGETS, UNSEEN_TARGETS = (0, 1), (2,)
SEEN_ORDERS, UNSEEN_ORDERS = (0, 1, 2, 3), (4, 5)
COMBO_TASKS = ("pick-place", "touch")  # the tasks that name objects (push too, but it is not in the default task set)
WARP_RANGE = ((-0.08, 0.08), (-0.08, 0.08), (-0.3, 0.3), (0.9, 1.15))  # shift x, y, rotation, zoom: off-domain cameras
PATH_OK = 0.1  # Frechet distance (image units) under which a predicted path counts as good
FOLLOW_OK = 0.05  # mean distance of the executed trajectory to the path under which it counts as followed


@dataclasses.dataclass(frozen=True)
class Domain:
    layouts: range  # layout seeds
    palettes: range
    warp: tuple[float, float, float, float] | None = suites.IDENTITY_WARP  # None: a random camera (WARP_RANGE) per variant
    physics: tuple[tuple[str, float], ...] = ()  # scales of the default gain, damping, radius
    combos: str = "seen"  # "seen", "unseen" or "all" object-task combinations


_UNSEEN_LAYOUTS = suites.split("unseen-layouts").layouts
IN_DOMAIN = Domain(layouts=range(0, 50), palettes=range(0, 4))
OFF_DOMAIN = Domain(
    layouts=range(100, 1000), palettes=range(4, 100), warp=None, physics=(("gain", 1.5), ("damping", 0.6)), combos="all"
)
SPLITS = {
    "in-domain": IN_DOMAIN,  # the demos' own layouts and palettes: a reference, not held out
    "layouts": Domain(_UNSEEN_LAYOUTS, IN_DOMAIN.palettes),
    "palettes": Domain(_UNSEEN_LAYOUTS, suites.split("unseen-palettes").palettes),
    "camera": Domain(_UNSEEN_LAYOUTS, IN_DOMAIN.palettes, warp=suites.split("camera-warp").warp),
    "dynamics": Domain(_UNSEEN_LAYOUTS, IN_DOMAIN.palettes, physics=suites.split("unseen-dynamics").physics),
    "combos": Domain(_UNSEEN_LAYOUTS, IN_DOMAIN.palettes, combos="unseen"),
}  # fmt: skip
HELD_OUT = tuple(s for s in SPLITS if s != "in-domain")


@dataclasses.dataclass(frozen=True)
class Method:
    high: str | None  # the path's source: "full" (off-domain + in-domain), "in-domain", "oracle"; None: an action model
    low: str  # a path encoding, or "flat" / "monolithic"
    demos: float = 1.0  # fraction of the in-domain demo episodes its low level (or action model) trains on


# HAMSTER's own low levels read the path drawn on the image (overlay, or channels concatenated to it, as
# RVT-2's); ours reads the image and a vector of the path ahead of the agent ("lookahead", `paths.path_lookahead`):
# with only the drawing, at 32 px, the low level followed the oracle path in 0.32 of the in-domain episodes
# (reach 0.65, pick-place 0.00, touch 0.04, avoid 0.59), with the lookahead vector in 0.59 (reach 0.85,
# pick-place 0.39, touch 0.19, avoid 0.87) (2026-12-07: 3,000 demos, privileged state, 24,000 updates of
# batch 128, one seed, 128 episodes).
METHODS = {
    "hamster": Method("full", "lookahead"),
    "hamster-channels": Method("full", "channels"),
    "hamster-overlay": Method("full", "overlay"),
    "hamster-50": Method("full", "lookahead", 0.5),
    "hamster-no-off": Method("in-domain", "lookahead"),
    "oracle-path": Method("oracle", "lookahead"),
    "flat": Method(None, "flat"),
    "flat-50": Method(None, "flat", 0.5),
    "monolithic": Method(None, "monolithic"),
}


@dataclasses.dataclass(frozen=True)
class HamsterConfig:
    tasks: tuple[str, ...] = ("reach", "pick-place", "touch", "avoid")  # push is left out: its expert succeeds 55%
    image_size: int = 32
    # What the policies read besides the image (every method alike): "privileged" adds the objects', goal's
    # and avoid region's coordinates and the touch progress to the agent's own state (`hierarchy.STATE_VIEWS`).
    state: str = "privileged"
    # in-domain expert episodes (before dropping the unsuccessful ones). With 300 the low level learned its
    # demos and little else: action error 0.13 on them, 0.91 on new in-domain episodes (2026-12-07).
    demo_episodes: int = 3000
    # off-domain first frames with path labels, no actions: cheap, so many (with 3,000 the high level memorised
    # them: start-point error 0.14 on its training frames, 0.46 on new frames of the same layouts)
    offdomain_paths: int = 30_000
    pointing: int = 6_000  # off-domain pointing examples
    offdomain_episodes: int = 400  # off-domain expert episodes under the mismatched embodiment (monolithic)
    path_noise: float = 0.01  # N(0, .) on the low level's training paths (x, y), as HAMSTER
    channels: tuple[int, ...] = (16, 32, 32)
    hidden_dims: tuple[int, ...] = (256, 256)
    batch_size: int = 128
    high_steps: int = 6000
    low_steps: int = 24_000  # 8,000 of batch 64 left the low level underfit on 3,000 demos (loss 0.37, success 0.32)
    learning_rate: float = 1e-3
    eval_episodes: int = 32  # per split and seed
    seeds: int = 3
    methods: tuple[str, ...] = tuple(METHODS)
    splits: tuple[str, ...] = tuple(SPLITS)
    seed: int = 0

    def validate(self) -> "HamsterConfig":
        for field, known in (("methods", METHODS), ("splits", SPLITS), ("tasks", TASKS)):
            unknown = sorted(set(getattr(self, field)) - set(known))
            if unknown or not getattr(self, field):
                raise ConfigError(f"{field}: unknown or none {unknown}; choices: {', '.join(known)}")
        if self.state not in hierarchy.STATE_VIEWS:
            raise ConfigError(f"state must be one of {', '.join(hierarchy.STATE_VIEWS)}, got {self.state!r}")
        if self.image_size not in IMAGE_SIZES:
            raise ConfigError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if "combos" in self.splits and not set(self.tasks) & set(COMBO_TASKS):
            raise ConfigError(f"the combos split needs a task that names objects ({', '.join(COMBO_TASKS)}) in tasks")
        for name in ("demo_episodes", "offdomain_paths", "offdomain_episodes", "batch_size", "high_steps", "low_steps",
                     "eval_episodes", "seeds"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pointing < 0 or self.path_noise < 0:
            raise ConfigError("pointing and path_noise must be >= 0")
        return self


# ----- variants of a domain -----


@dataclasses.dataclass(frozen=True)
class Variants:
    params: WorldParams  # stacked [n]
    layouts: np.ndarray  # the layout seeds [n]
    palettes: np.ndarray


generate_layouts = jax.jit(jax.vmap(generate))


def sample_variants(domain: Domain, tasks, n: int, rng: np.random.Generator) -> Variants:
    """n task variants of a domain: tasks uniform over `tasks` (only those naming objects for unseen
    combinations), layouts and palettes uniform over the domain's."""
    if domain.combos == "unseen":
        tasks = [t for t in tasks if t in COMBO_TASKS]
    task = rng.choice([TASKS.index(t) for t in tasks], n)
    targets = {"seen": SEEN_TARGETS, "unseen": UNSEEN_TARGETS, "all": range(NUM_OBJECTS)}[domain.combos]
    orders = {"seen": SEEN_ORDERS, "unseen": UNSEEN_ORDERS, "all": range(len(ORDERS))}[domain.combos]
    target = rng.choice(list(targets), n)
    order = np.asarray(ORDERS)[rng.choice(list(orders), n)]
    layouts = np.asarray(domain.layouts)[rng.integers(0, len(domain.layouts), n)]
    palettes = np.asarray(domain.palettes)[rng.integers(0, len(domain.palettes), n)]
    if domain.warp is None:
        warp = np.stack([rng.uniform(lo, hi, n) for lo, hi in WARP_RANGE], axis=1)
    else:
        warp = np.tile(np.asarray(domain.warp), (n, 1))
    physics = {k: v * dict(domain.physics).get(k, 1.0) for k, v in suites.DEFAULT_PHYSICS.items()}
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    params = WorldParams(free=generate_layouts(jnp.asarray(layouts)), task=jnp.asarray(task, jnp.int32),
                         target=jnp.asarray(target, jnp.int32), order=jnp.asarray(order, jnp.int32),
                         sparse=jnp.zeros(n, bool), palette=jnp.asarray(palettes, jnp.int32), warp=f32(warp),
                         **{k: f32(np.full(n, v)) for k, v in physics.items()})  # fmt: skip
    return Variants(params, layouts, palettes)


def first_states(variants: Variants, key) -> jax.Array:
    """One initial state vector [n, STATE_DIM] per variant."""
    return _first_states(variants.params, jax.random.split(key, len(variants.layouts)))


@jax.jit
def _first_states(params: WorldParams, keys) -> jax.Array:
    core = PathWorldCore()
    return jax.vmap(lambda p, k: state_vector(core.reset_state(k, p), p))(params, keys)


@jax.jit
def expert_episodes(params: WorldParams, key):
    """The scripted expert's episodes in every variant [n]: state vectors [n, T, STATE_DIM], actions
    [n, T, 3], alive [n, T] (the step is before success) and success [n]."""
    core = PathWorldCore()

    def episode(p, key):
        k_reset, k_steps = jax.random.split(key)

        def step(carry, k):
            state, done = carry
            obs = state_vector(state, p)
            action = expert_action(p, obs, k)
            state, _, success = core.step_state(state, action, p)
            return (state, done | success), (obs, action, ~done)

        (_, done), (obs, actions, alive) = jax.lax.scan(
            step, (core.reset_state(k_reset, p), jnp.zeros((), bool)), jax.random.split(k_steps, MAX_EPISODE_STEPS)
        )
        return obs, actions, alive, done

    n = jax.tree.leaves(params)[0].shape[0]
    return jax.vmap(episode)(params, jax.random.split(key, n))


# ----- rendering and rows -----


def to_pixels(x) -> jax.Array:
    """uint8 of values in [0, 1]: how images and drawn paths are stored (and quantised at evaluation too)."""
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255).astype(jnp.uint8)


def from_pixels(x) -> jax.Array:
    return x.astype(jnp.float32) / 255.0


# Module-level jitted functions (not a jax.jit of a fresh lambda per call, which compiles again every call).
@functools.partial(jax.jit, static_argnames="size")
def render_states(states, palettes, warps, size: int) -> jax.Array:
    """uint8 images [n, size, size, 3] of state vectors [n, STATE_DIM] (rendered in batches)."""
    one = lambda x: to_pixels(render(unpack(x[0]), x[1], x[2], size))  # noqa: E731
    return jax.lax.map(one, (states, palettes, warps), batch_size=256)


@jax.jit
def image_path_labels(params: WorldParams, states) -> jax.Array:
    """The expert's path label [n, M, 4] of each state, in the image coordinates of its variant's camera."""
    return jax.vmap(lambda p, s: hierarchy.label_in_image(path_label(p, s), p.warp))(params, states)


instructions = jax.jit(jax.vmap(instruction))


def noisy_paths(path, key, noise: float) -> jax.Array:
    """N(0, noise) on the x, y of every valid waypoint."""
    jitter = noise * jax.random.normal(key, path[..., :2].shape) * path[..., 3:]
    return path.at[..., :2].add(jitter)


@functools.partial(jax.jit, static_argnames="size")
def draw_channels(path, size: int) -> jax.Array:
    """uint8 `paths.path_channels` [n, size, size, 2] of image-coordinate paths [n, M, 4]."""
    one = lambda p: to_pixels(paths.path_channels(p, size, hierarchy.IDENTITY))  # noqa: E731
    return jax.lax.map(one, path, batch_size=256)


def take(params: WorldParams, index) -> WorldParams:
    return jax.tree.map(lambda x: x[index], params)


# ----- data -----


@dataclasses.dataclass
class Data:
    demos: dict  # in-domain rows: proprio (the state fields the policies read), image, channels (noisy path, drawn), path (noisy), tokens, action, episode
    demo_episodes: int  # successful in-domain episodes (rows' `episode` indexes them)
    high_in: dict  # in-domain first frames: image, tokens, path
    high_off: dict  # off-domain first frames and pointing examples: image, tokens, path
    actions_off: dict  # off-domain rows under the mismatched embodiment: proprio, image, tokens, action
    expert_success: dict  # fraction of successful expert episodes: {"in-domain": x, "off-domain": y}


def rows_of(params: WorldParams, states, actions, alive, keep, size: int, view: str) -> dict:
    """Rows (the alive steps of the kept episodes) with their images, instruction and first-frame label,
    and the state fields the policies read (`view`)."""
    episodes = np.flatnonzero(np.asarray(keep))
    mask = np.asarray(alive)[episodes]
    ep, t = np.nonzero(mask)
    p = take(params, episodes)
    s = np.asarray(states)[episodes][ep, t]
    return {
        "proprio": jnp.asarray(observed_state(s, view)),
        "image": render_states(jnp.asarray(s), p.palette[ep], p.warp[ep], size),
        "tokens": instructions(p)[ep],
        "path": image_path_labels(p, jnp.asarray(states)[episodes, 0])[ep],
        "action": jnp.asarray(np.asarray(actions)[episodes][ep, t]),
        "episode": jnp.asarray(ep, jnp.int32),
    }


def first_frames(params: WorldParams, states, size: int) -> dict:
    return {"image": render_states(states, params.palette, params.warp, size), "tokens": instructions(params),
            "path": image_path_labels(params, states)}  # fmt: skip


def build_data(cfg: HamsterConfig, key, log=print) -> Data:
    rng = np.random.default_rng(cfg.seed)
    k_demo, k_noise, k_off, k_point, k_act = jax.random.split(key, 5)
    size = cfg.image_size
    demo = sample_variants(IN_DOMAIN, cfg.tasks, cfg.demo_episodes, rng)
    states, actions, alive, success = expert_episodes(demo.params, k_demo)
    demos = rows_of(demo.params, states, actions, alive, success, size, cfg.state)
    kept = int(np.asarray(success).sum())
    high_in = first_frames(take(demo.params, np.flatnonzero(np.asarray(success))), states[np.asarray(success), 0], size)
    demos["path"] = noisy_paths(demos["path"], k_noise, cfg.path_noise)
    demos["channels"] = draw_channels(demos["path"], size)
    log(f"  in-domain: {kept}/{cfg.demo_episodes} successful expert episodes, {len(demos['episode'])} rows")

    off = sample_variants(OFF_DOMAIN, cfg.tasks, cfg.offdomain_paths + cfg.pointing, rng)
    off_states = first_states(off, k_off)
    paths_part = take(off.params, slice(0, cfg.offdomain_paths))
    high_off = first_frames(paths_part, off_states[: cfg.offdomain_paths], size)
    if cfg.pointing:
        point = take(off.params, slice(cfg.offdomain_paths, None))
        pointing = hierarchy.pointing_examples(point, off_states[cfg.offdomain_paths :], size, k_point)
        pointing["image"] = to_pixels(pointing["image"])
        high_off = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), high_off, pointing)

    acting = sample_variants(OFF_DOMAIN, cfg.tasks, cfg.offdomain_episodes, rng)
    states, actions, alive, off_success = expert_episodes(acting.params, k_act)
    everything = np.ones(cfg.offdomain_episodes, bool)  # off-domain data is not curated: every episode counts
    actions_off = rows_of(acting.params, states, actions, alive, everything, size, cfg.state)
    actions_off = {k: actions_off[k] for k in ("proprio", "image", "tokens", "action")}
    log(f"  off-domain: {cfg.offdomain_paths} path labels, {cfg.pointing} pointing, {len(actions_off['action'])} action rows")
    return Data(demos, kept, high_in, high_off, actions_off,
                {"in-domain": kept / cfg.demo_episodes, "off-domain": float(np.mean(off_success))})  # fmt: skip


def demo_subset(rows: dict, episodes: int, fraction: float) -> dict:
    """The rows of the first `fraction` of the demo episodes."""
    keep = np.asarray(rows["episode"]) < max(1, int(round(fraction * episodes)))
    return jax.tree.map(lambda x: x[keep], rows)


# ----- models and training -----


def models(cfg: HamsterConfig) -> dict:
    common = {"hidden_dims": cfg.hidden_dims, "channels": cfg.channels}
    return {"high": PathModel(**common), "action": ActionModel(**common),
            **{e: PathPolicy(e, **common) for e in hierarchy.ENCODINGS}}  # fmt: skip


def model_names(method: Method) -> tuple[str | None, str]:
    """(the high level's model name or None, the acting model's name)."""
    high = f"high/{method.high}" if method.high in ("full", "in-domain") else None
    kind = "action" if method.high is None else method.low
    return high, f"{kind}/{'monolithic' if method.low == 'monolithic' else 'demos'}/{method.demos:g}"


def needed(cfg: HamsterConfig) -> dict[str, tuple]:
    """The models the methods need, each trained once: name -> (kind, training data option)."""
    out = {}
    for name in cfg.methods:
        m = METHODS[name]
        high, act = model_names(m)
        if high:
            out[high] = ("high", m.high)
        out[act] = ("action" if m.high is None else m.low, ("monolithic" if m.low == "monolithic" else "demos", m.demos))
    return out


def training_set(kind: str, option, data: Data) -> dict:
    if kind == "high":
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), data.high_in, data.high_off)
        return both if option == "full" else data.high_in
    source, fraction = option
    rows = demo_subset(data.demos, data.demo_episodes, fraction)
    if kind == "action":
        rows = {k: rows[k] for k in ("proprio", "image", "tokens", "action")}
        if source == "monolithic":
            rows = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), rows, data.actions_off)
        return rows
    return {k: rows[k] for k in ("proprio", "image", "channels", "path", "action")}


def model_inputs(kind: str, rows: dict) -> tuple:
    """A model's inputs from rows of its training set (images and drawn paths from uint8)."""
    if kind == "high":
        return from_pixels(rows["image"]), rows["tokens"]
    if kind == "action":
        return rows["proprio"], from_pixels(rows["image"]), rows["tokens"]
    return rows["proprio"], from_pixels(rows["image"]), rows["path"], from_pixels(rows["channels"])


def loss_of(kind: str, model):
    """The high level's `path_loss`, or the squared action error (summed over action dims) of the others."""
    if kind == "high":
        return lambda params, b: hierarchy.path_loss(model.apply(params, *model_inputs(kind, b)), b["path"])
    return lambda params, b: jnp.mean(jnp.sum((model.apply(params, *model_inputs(kind, b)) - b["action"]) ** 2, axis=-1))


def init_params(kind: str, model, rows: dict, key, seeds: int):
    """Fresh params [seeds] of a model for rows of its training set."""
    example = model_inputs(kind, jax.tree.map(lambda x: x[:1], rows))
    return jax.vmap(lambda k: model.init(k, *example))(jax.random.split(key, seeds))


def learner(cfg: HamsterConfig, kind: str, rows: dict) -> Supervised:
    """The model of `kind` as a supervised agent over rows of its training set."""
    model = models(cfg)[kind]
    example = model_inputs(kind, jax.tree.map(lambda x: x[:1], rows))
    return Supervised(init_params=lambda k: model.init(k, *example), loss=loss_of(kind, model), learning_rate=cfg.learning_rate)


def model_settings(cfg: HamsterConfig, name: str) -> dict:
    """What a trained model depends on (a model directory of other settings is trained afresh)."""
    ignored = ("methods", "splits", "eval_episodes")
    return {"protocol": "hamster", "model": name, **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignored}}


def train_model(cfg: HamsterConfig, name: str, data: Data, key, run_dir: Path):
    """One model for every seed, a trainer run in `run_dir` (resumed after a kill, restored when done):
    (params [seeds], losses [seeds, chunks]: the mean loss of each chunk)."""
    kind, option = needed(cfg)[name]
    rows = training_set(kind, option, data)
    steps = cfg.high_steps if kind == "high" else cfg.low_steps
    agents = replicate_agent(learner(cfg, kind, rows), cfg.seeds)
    phase = Offline(steps, chunks_of(steps), cfg.batch_size)
    stage = run_stage(agents, [phase], rows, jax.random.split(key, cfg.seeds), run_dir, model_settings(cfg, name))
    losses = np.asarray([[r["loss"] for r in stage.rows if r["seed"] == s] for s in range(cfg.seeds)])
    return stage.states.agent.model.params, losses


# ----- evaluation -----


def evaluate_method(cfg: HamsterConfig, method: Method, trained: dict, variants: WorldParams, key) -> dict:
    """Episodes of every variant [n] for every seed: success [seeds, n], the path the low level followed
    (the expert's label for action models), the expert's label, the agent's positions in image coordinates
    [seeds, n, T, 2], alive [seeds, n, T], the first state vector [seeds, n, STATE_DIM]."""
    nets = models(cfg)
    size = cfg.image_size
    high_name, act_name = model_names(method)
    core = PathWorldCore()

    def episode(high_params, act_params, p, key):
        k_reset, k_steps = jax.random.split(key)
        state = core.reset_state(k_reset, p)
        first = state_vector(state, p)
        image = lambda s: from_pixels(to_pixels(render(unpack(s), p.palette, p.warp, size)))[None]  # noqa: E731
        tokens = instruction(p)[None]
        label = hierarchy.label_in_image(path_label(p, first), p.warp)
        if method.high is None:
            path = label  # not used: recorded for the figure only
            act = lambda s: nets["action"].apply(act_params, observed_state(s, cfg.state)[None], image(s), tokens)[0]  # noqa: E731
        else:
            path = label if method.high == "oracle" else nets["high"].apply(high_params, image(first), tokens).path()[0]
            channels = from_pixels(to_pixels(paths.path_channels(path, size, hierarchy.IDENTITY)))[None]
            # the vector encoding's progress: where the camera shows the agent, the path's own coordinates
            act = lambda s: nets[method.low].apply(act_params, observed_state(s, cfg.state)[None], image(s), path[None], channels,  # noqa: E731
                                                   image_coordinates(s[:2], p.warp)[None])[0]  # fmt: skip

        def step(carry, k):
            state, done = carry
            obs = state_vector(state, p)
            state, _, success = core.step_state(state, act(obs), p)
            return (state, done | success), (image_coordinates(obs[:2], p.warp), ~done)

        (_, done), (positions, alive) = jax.lax.scan(
            step, (state, jnp.zeros((), bool)), jax.random.split(k_steps, MAX_EPISODE_STEPS)
        )
        return {"success": done, "path": path, "label": label, "positions": positions, "alive": alive, "first": first}

    n = jax.tree.leaves(variants)[0].shape[0]
    high = trained[high_name] if high_name else trained[act_name]  # a placeholder the episode ignores
    per_seed = lambda hp, ap, k: jax.vmap(episode, in_axes=(None, None, 0, 0))(hp, ap, variants, jax.random.split(k, n))  # noqa: E731
    return jax.jit(jax.vmap(per_seed))(high, trained[act_name], jax.random.split(key, cfg.seeds))


def path_metrics(episodes: dict) -> dict:
    """Frechet distance of the followed path to the label [seeds, n] and adherence: the mean distance of
    the executed (alive) positions to the path [seeds, n]."""
    frechet = jax.jit(jax.vmap(jax.vmap(paths.frechet_distance)))(episodes["path"], episodes["label"])
    dist = jax.jit(jax.vmap(jax.vmap(lambda p, x: paths.progress(p, x)[1])))(episodes["path"], episodes["positions"])
    alive = episodes["alive"]
    adherence = jnp.sum(dist * alive, -1) / jnp.maximum(alive.sum(-1), 1)
    return {"frechet": np.asarray(frechet), "adherence": np.asarray(adherence)}


def attribution(success, frechet, adherence) -> dict:
    """Fractions of the failed episodes: bad path (Frechet > PATH_OK), else did not follow (adherence >
    FOLLOW_OK), else followed but failed."""
    failed = ~np.asarray(success, bool)
    bad = failed & (frechet > PATH_OK)
    astray = failed & ~bad & (adherence > FOLLOW_OK)
    rest = failed & ~bad & ~astray
    total = max(int(failed.sum()), 1)
    return {"failures": int(failed.sum()), "bad path": bad.sum() / total, "did not follow": astray.sum() / total,
            "followed, failed": rest.sum() / total}  # fmt: skip


def counterfactual_attribution(success, oracle_success) -> dict:
    """Which level each failed episode fails for, by what the oracle path does from the same start state
    (every method meets the same episodes): "the path" where the low level with the expert's path
    succeeds there, "the low level" where it fails too. Arrays [seeds, ...]; the fractions are of each
    seed's failures ([seeds], NaN for a seed with none) and over all of them."""
    failed = ~np.asarray(success, bool)
    path = failed & np.asarray(oracle_success, bool)
    axes = tuple(range(1, failed.ndim))
    per_seed = path.sum(axes) / np.where(failed.sum(axes) > 0, failed.sum(axes), np.nan)
    total = max(int(failed.sum()), 1)
    return {"failures": int(failed.sum()), "the path": path.sum() / total, "the low level": (failed & ~path).sum() / total,
            "the path per seed": per_seed}  # fmt: skip


def evaluation_variants(cfg: HamsterConfig) -> dict[str, Variants]:
    """`eval_episodes` variants of every split (their own rng stream: the same for every method)."""
    rng = np.random.default_rng(cfg.seed + 1)
    return {s: sample_variants(SPLITS[s], cfg.tasks, cfg.eval_episodes, rng) for s in cfg.splits}


def run(cfg: HamsterConfig, key, workdir: Path, log=print) -> dict:
    """The whole protocol; returns per method: success [seeds, splits, episodes], frechet and adherence
    (hierarchical methods), example episodes for the figure, seconds per stage. Every model is a trainer
    run in `workdir/<model>` (a rerun after a kill resumes there; finished models are not retrained)."""
    t0 = time.perf_counter()
    k_data, k_models, k_eval = jax.random.split(key, 3)
    log("data")
    data = build_data(cfg, k_data, log)
    seconds = {"data": time.perf_counter() - t0}
    trained, losses = {}, {}
    todo = needed(cfg)
    for name, k in zip(todo, jax.random.split(k_models, len(todo)), strict=True):
        t = time.perf_counter()
        trained[name], losses[name] = train_model(cfg, name, data, k, Path(workdir) / name.replace("/", "_"))
        seconds[name] = time.perf_counter() - t
        log(f"  {name}: loss {losses[name][:, 0].mean():.4f} -> {losses[name][:, -1].mean():.4f} ({seconds[name]:.0f} s)")
    variants = evaluation_variants(cfg)
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[v.params for v in variants.values()])
    results = {}
    for name in cfg.methods:  # one evaluation key: every method starts from the same states
        t = time.perf_counter()
        method = METHODS[name]
        episodes = evaluate_method(cfg, method, trained, stacked, k_eval)
        shape = (cfg.seeds, len(cfg.splits), cfg.eval_episodes)
        result = {"success": np.asarray(episodes["success"]).reshape(shape)}
        if method.high is not None:
            result.update({k: v.reshape(shape) for k, v in path_metrics(episodes).items()})
        result["example"] = {k: np.asarray(v[0]) for k, v in episodes.items()}  # seed 0, every variant
        seconds[f"eval/{name}"] = time.perf_counter() - t
        log(f"  {name}: success " + ", ".join(f"{s} {result['success'][:, i].mean():.2f}" for i, s in enumerate(cfg.splits))
            + f" ({seconds[f'eval/{name}']:.0f} s)")  # fmt: skip
        results[name] = result
    return {"methods": results, "losses": losses, "seconds": seconds, "variants": variants,
            "expert_success": data.expert_success, "demo_episodes": data.demo_episodes,
            "demo_rows": int(data.demos["action"].shape[0])}  # fmt: skip
