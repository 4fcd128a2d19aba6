"""What the compiled training programs contain: nothing inside a chunk returns to the host, and each
phase compiles its chunk once."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import IQL, SAC
from jaxrl.data.dataset import Dataset, Normalizer
from jaxrl.sweep import member_keys, stack_agents
from jaxrl.train import TrainConfig, build
from jaxrl.trainer import build_offline_program, build_online_program

HOST_PATTERNS = ("callback", "outfeed", "infeed", "host", "send", "recv")


def opcodes(hlo_text: str) -> list[str]:
    """The opcode of every instruction (`%name = type opcode(operands), ...`) of an HLO text."""
    found = []
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%\S+\s*=\s*(.*)", line)
        if m and (op := re.search(r"([a-z][a-z0-9-]*)\(", m.group(1))):
            found.append(op.group(1))
    return found


def host_transfers(hlo_text: str) -> list[str]:
    """The instructions of a compiled program's HLO text that call back into or talk to the host:
    host callbacks (custom calls such as xla_python_cpu_callback), infeed/outfeed, send/recv."""
    targets = set(re.findall(r'custom_call_target="([^"]+)"', hlo_text))
    return sorted(x for x in set(opcodes(hlo_text)) | targets if any(p in x.lower() for p in HOST_PATTERNS))


def while_loops(hlo_text: str) -> int:
    return opcodes(hlo_text).count("while")


def compiled_chunk_text(program) -> str:
    """The optimised HLO of one seed's chunk, as the trainer compiles it (the data an argument), for the
    states' shapes: `init` itself is never compiled or run."""
    states = jax.eval_shape(program.init, member_keys([{"seed": 0}]))
    return program.compiled_chunk.lower(states, 0, program.data).compile().as_text()


def offline_chunk(pendulum):
    rng = np.random.default_rng(0)
    n = 500
    dataset = Dataset.from_numpy(
        observations=rng.standard_normal((n, 3)),
        actions=rng.uniform(-1, 1, (n, 1)),
        rewards=rng.standard_normal(n),
        next_observations=rng.standard_normal((n, 3)),
        terminals=np.zeros(n),
        timeouts=np.zeros(n),
    )
    agents = stack_agents(IQL(hidden_dims=(8, 8)).configure(pendulum.spec, 300), [{"seed": 0}])
    return build_offline_program(agents, dataset, Normalizer.identity(3), pendulum, chunk_steps=20, batch_size=16,
                                 eval_episodes=1)  # fmt: skip


def online_chunk(pendulum):
    agents = stack_agents(SAC(hidden_dims=(8, 8)).configure(pendulum.spec, 300), [{"seed": 0}])
    return build_online_program(agents, pendulum, chunk_steps=20, num_envs=1, batch_size=16, utd=1, learning_starts=10,
                                buffer_size=100, eval_episodes=1)  # fmt: skip


@pytest.mark.parametrize("build", [offline_chunk, online_chunk], ids=["offline", "online"])
def test_chunk_makes_no_host_round_trip(pendulum, build):
    """A chunk is one device program: no host callback, infeed/outfeed or send/recv inside its loop."""
    text = compiled_chunk_text(build(pendulum))
    assert while_loops(text) >= 1, "expected the chunk's lax.scan as a while loop: is this the chunk's HLO?"
    assert host_transfers(text) == []


def test_host_transfers_sees_a_callback():
    """The check can fail: a `jax.debug.callback` inside a scan shows up in the compiled program."""

    def body(carry, x):
        jax.debug.callback(lambda v: None, x)
        return carry + x, None

    text = jax.jit(lambda xs: jax.lax.scan(body, 0.0, xs)[0]).lower(jnp.arange(3.0)).compile().as_text()
    assert while_loops(text) >= 1
    assert any("callback" in x for x in host_transfers(text)), host_transfers(text)


@pytest.mark.parametrize("regime", ["offline", "online", "offline-to-online"])
def test_chunks_compile_once(tmp_path, random_pendulum_file, regime):
    """The state a chunk returns has exactly the types it takes: the host loop never recompiles (each
    phase of a regime compiles its chunk once)."""
    agent = (SAC if regime == "online" else IQL)(hidden_dims=(8, 8))
    cfg = TrainConfig(agent=agent, regime=regime, dataset=str(random_pendulum_file), seeds=2, steps=300,
                      online_steps=300 if regime == "offline-to-online" else 0, chunk_steps=100, batch_size=16,
                      num_envs=2, learning_starts=50, buffer_size=500, eval_episodes=1, run_dir=str(tmp_path))  # fmt: skip
    program = build(cfg).program
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    states = program.init(keys)
    types = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), tree)  # noqa: E731
    for phase in program.phases:
        for index in range(phase.first_chunk, phase.first_chunk + phase.num_chunks):
            states = program.enter(states, index, keys)
            before = types(states)
            states, _ = program.chunk(states, index)
            assert types(states) == before
        assert phase.compiled_chunk._cache_size() == 1
