"""Every experiment spec we ship (presets, examples, table members aside) loads into a valid config."""

from pathlib import Path

import pytest

from jaxrl.config import load_experiment

SPECS = sorted(p for p in (Path(__file__).parents[1] / "experiments").rglob("*.yaml") if "tables" not in p.parts)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_spec_loads_and_validates(path):
    config = load_experiment(path)
    config.validate()
