"""Every experiment spec in experiments/ loads into a valid config; bad specs name file and key."""

from pathlib import Path

import pytest

from jaxrl.agents import IQL, ConfigError
from jaxrl.config import load_experiment

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
SPECS = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if "tables" not in p.parts)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_is_valid(path):
    load_experiment(path).validate()


def test_demo_spec():
    cfg = load_experiment(Path(__file__).parent.parent / "experiments" / "demo.yaml")
    assert isinstance(cfg.agent, IQL) and cfg.agent.hidden_dims == (128, 128) and cfg.seeds == 5


@pytest.mark.parametrize(
    "text, message",
    [
        ("algo: iql\nseedz: 3\n", "unknown key 'seedz'"),
        ("algo: xql\n", "unknown algorithm 'xql'"),
        ("algo: iql\nagent: {betta: 2}\n", "iql has no hyperparameter 'betta'"),
        ("seeds: 3\n", "at least an 'algo' key"),
        ("algo: [iql\n", "not valid YAML"),
        ("algo: iql\ncorruption: {element: [rewards]}\n", "corruption has no setting 'element'"),
    ],
)
def test_bad_spec(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_experiment(path)
    assert str(path) in str(err.value)


def test_table_specs_build_valid_cells(tmp_path):
    from jaxrl.protocols.table import TableSpec, _cell_config

    for path in sorted((EXPERIMENTS / "tables").glob("*.yaml")):
        spec = TableSpec.load(path)
        for algo in spec.algorithms:
            for row in spec.row_settings():
                _cell_config(spec, algo, row, tmp_path).validate()
