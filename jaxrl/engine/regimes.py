"""What each regime is, in one place: its phases, its default buffer policy, its run-directory suffix,
whether it reads a dataset, and which agents may run it. The config, the trainer and the CLI ask
`REGIMES[name]` instead of deciding on the regime's name themselves.

A new regime is one more `Regime` here whose `phases` returns phases of `jaxrl.engine.phases` (or new ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from jaxrl.engine.phases import Offline, Online, OnPolicy, Phase


def _online(cfg, steps: int, online_agents) -> Online:
    return Online(
        steps,
        chunk_steps=cfg.chunk_steps,
        batch_size=cfg.batch_size,
        num_envs=cfg.num_envs,
        utd=cfg.utd,
        learning_starts=cfg.learning_starts,
        buffer_size=cfg.buffer_size,
        buffer=cfg.resolved_buffer,
        offline_fraction=cfg.offline_fraction,
        agents=online_agents,
    )


def _offline(cfg) -> Offline:
    return Offline(cfg.steps, cfg.chunk_steps, cfg.batch_size)


@dataclass(frozen=True)
class Regime:
    name: str
    description: str
    # (config, stacked agents, the agents of an online phase that starts pretrained or None) -> phases
    phases: Callable[..., list[Phase]]
    buffers: tuple[str, ...] = ()  # the buffer policies its online phase may use, the default first; () = none
    run_dir_suffix: str = ""
    pretrains: bool = False  # its online phase starts from an agent it trained itself
    refuses: tuple[str, ...] = ()  # agent kinds it cannot run: "offline_only", "hybrid_only", "on_policy"

    @property
    def online(self) -> bool:
        """Whether it has an online phase (and so a buffer, learning_starts and online hyperparameters)."""
        return bool(self.buffers)

    def reads_dataset(self, buffer: str | None) -> bool:
        return self.name != "online" or buffer != "discard"

    def check(self, agent) -> str | None:
        """Why `agent` cannot run this regime (None: it can)."""
        if "offline_only" in self.refuses and agent.offline_only:
            return agent.offline_only
        if "hybrid_only" in self.refuses and agent.hybrid_only:
            return agent.hybrid_only
        if "on_policy" in self.refuses and agent.on_policy:
            return "it learns on-policy from its own rollouts, so only in the online regime"
        return None


REGIMES = {
    regime.name: regime
    for regime in (
        Regime(
            "offline",
            "learn from the dataset",
            lambda cfg, agents, online: [_offline(cfg)],
            refuses=("hybrid_only", "on_policy"),
        ),
        Regime(
            "online",
            "collect in the env and learn from a replay buffer (or, on-policy, from each rollout)",
            lambda cfg, agents, online: (
                [OnPolicy(cfg.steps, cfg.chunk_steps, cfg.num_envs)] if agents.on_policy else [_online(cfg, cfg.steps, online)]
            ),
            buffers=("discard", "keep", "mix"),
            refuses=("offline_only", "hybrid_only"),
        ),
        Regime(
            "offline-to-online",
            "learn offline, then online from where the offline phase ended",
            lambda cfg, agents, online: [_offline(cfg), _online(cfg, cfg.online_steps, online)],
            buffers=("keep", "mix", "discard"),
            run_dir_suffix="-o2o",
            pretrains=True,
            refuses=("offline_only", "hybrid_only", "on_policy"),
        ),
        Regime(
            "hybrid",
            "collect in a simulator and learn from a mix of the dataset and the simulator's buffer",
            lambda cfg, agents, online: [_online(cfg, cfg.steps, online)],
            buffers=("mix",),
            run_dir_suffix="-hybrid",
            refuses=("offline_only", "on_policy"),
        ),
    )
}
