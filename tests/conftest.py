import os
import tempfile

import jax
import pytest

import envs
from jaxrl.data import save_dataset
from jaxrl.protocols.suite import collect


def pytest_configure(config):
    # Many tests compile the same programs (the same small configs, a run and its resumed copy): a
    # compilation cache for the session compiles each once. It is fresh per session, so every run tests
    # the same thing; a cached executable is the same program, bit for bit. (Each xdist worker has its own:
    # sharing one across processes needs JAX's file lock, which cost more than it saved here.)
    # A test's subprocess (a killed training run) inherits the cache through the environment; it runs
    # while the test waits for it, so only one process uses the cache at a time.
    config._xla_cache = tempfile.TemporaryDirectory(prefix="jaxrl-test-xla-")
    settings = {
        "jax_compilation_cache_dir": config._xla_cache.name,
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)


def pytest_unconfigure(config):
    if hasattr(config, "_xla_cache"):
        config._xla_cache.cleanup()


@pytest.fixture(scope="session")
def pendulum():
    return envs.make("gymnax/Pendulum-v1")


@pytest.fixture(scope="session")
def random_pendulum_file(tmp_path_factory, pendulum):
    """2,000 uniformly random Pendulum transitions as a D4RL-layout NPZ (with reference returns)."""

    def random_policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], 1), minval=-1.0, maxval=1.0)

    data = collect(pendulum, random_policy, jax.random.PRNGKey(0), 2_000, 10)
    path = tmp_path_factory.mktemp("data") / "random.npz"
    return save_dataset(path, data, {"env": "gymnax/Pendulum-v1", "ref_min_score": -1200.0, "ref_max_score": -150.0})


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects: every slow test is checked, whichever tier runs
def pytest_collection_modifyitems(config, items):
    """The tiers' one definition is the `slow` mark; each use says why the test is in the full tier, and a
    learning test names its fast companion: `companion="tests/test_x.py::test_y"`, a test in `make test`
    that fails on the same class of bug. A companion that is missing or itself slow is an error, so the
    fast tier cannot silently lose what the full tier checks."""
    tests = {}
    for item in items:
        tests.setdefault(item.nodeid.split("[")[0], []).append(item)
    collected_files = {nodeid.split("::")[0] for nodeid in tests}
    problems = []
    for item in items:
        mark = item.get_closest_marker("slow")
        if mark is None:
            continue
        if mark.args or not mark.kwargs.get("reason"):
            problems.append(f"{item.nodeid}: @pytest.mark.slow needs reason=... (why it is in the full tier only)")
        companion = mark.kwargs.get("companion")
        if companion is None or companion.split("::")[0] not in collected_files:
            continue  # no companion, or its file is not part of this run
        found = tests.get(companion)
        if not found:
            problems.append(f"{item.nodeid}: its companion {companion} does not exist")
        elif any(c.get_closest_marker("slow") for c in found):
            problems.append(f"{item.nodeid}: its companion {companion} is slow itself; a companion runs in make test")
    if problems:
        raise pytest.UsageError("\n".join(problems))
