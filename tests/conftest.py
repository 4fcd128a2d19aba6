import jax
import pytest

import envs
from jaxrl.data import save_dataset
from jaxrl.data.suite import collect


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
