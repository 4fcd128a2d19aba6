"""What the compiled training programs contain: nothing inside a chunk returns to the host, and each
phase compiles its chunk once."""

import re

import jax
import jax.numpy as jnp
import pytest

from jaxrl.agents import IQL, SAC
from jaxrl.sweep import member_keys
from jaxrl.train import TrainConfig, build

pytestmark = pytest.mark.xdist_group("compiled")  # the tests share one module fixture: keep them on one worker

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


@pytest.fixture(scope="module")
def programs(tmp_path_factory, random_pendulum_file):
    """Online SAC from scratch, and IQL offline then online: every kind of phase, each chunk run twice."""
    out = {}
    for name, agent, regime in (("online", SAC, "online"), ("offline-to-online", IQL, "offline-to-online")):
        cfg = TrainConfig(agent=agent(hidden_dims=(8, 8)), regime=regime, dataset=str(random_pendulum_file), seeds=2,
                          steps=40, online_steps=40 if regime == "offline-to-online" else 0, chunk_steps=20,
                          batch_size=16, num_envs=2, learning_starts=10, buffer_size=100, eval_episodes=1,
                          run_dir=str(tmp_path_factory.mktemp("compiled")))  # fmt: skip
        program = build(cfg).program
        keys = member_keys([{"seed": 0}, {"seed": 1}])
        states, types = program.init(keys), []
        for index in range(program.num_chunks):
            states = program.enter(states, index, keys)
            before = jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states)
            states, _ = program.chunk(states, index)
            types.append((before, jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states)))
        out[name] = program, types
    return out


PHASES = [("online", 0), ("offline-to-online", 0), ("offline-to-online", 1)]
IDS = ["online", "o2o-offline", "o2o-online"]


@pytest.mark.parametrize("regime, phase", PHASES, ids=IDS)
def test_chunks_compile_once(programs, regime, phase):
    """The state a chunk returns has exactly the types it takes: the host loop never recompiles (each
    phase of a regime compiles its chunk once)."""
    program, types = programs[regime]
    for before, after in types:
        assert after == before
    assert program.phases[phase].compiled_chunk._cache_size() == 1


@pytest.mark.parametrize("regime, phase", PHASES, ids=IDS)
def test_chunk_makes_no_host_round_trip(programs, regime, phase):
    """A chunk is one device program: no host callback, infeed/outfeed or send/recv inside its loop."""
    program, _ = programs[regime]
    keys = member_keys([{"seed": 0}, {"seed": 1}])
    states = program.abstract_states(program.phases[phase].first_chunk + 1, keys)
    text = program.phases[phase].compiled_chunk.lower(states, 0, program.data).compile().as_text()
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
