"""The notebook in experiments/ runs top to bottom (at a tiny size), so the README's example cannot rot."""

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOK = Path(__file__).parent.parent / "experiments" / "notebook.ipynb"


@pytest.mark.slow(reason="starts a Jupyter kernel and runs every cell, several trainings (34 s)")
def test_notebook_runs_top_to_bottom(tmp_path, random_pendulum_file, monkeypatch):
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and "".join(tagged[0]["source"]) == cells[0], "the first code cell holds the sizes"
    assert not any(line.lstrip().startswith(("%", "!")) for cell in cells for line in cell.splitlines()), "plain Python only"

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(cells[0], "notebook cell 0", "exec"), namespace)
    # Tiny sizes, injected after the parameters cell as papermill would.
    namespace.update(DATASET=str(random_pendulum_file), STEPS=200, CHUNK_STEPS=100, SEEDS=2, HIDDEN_DIMS=(8, 8),
                     BETAS=(1.0, 10.0), ONLINE_STEPS=200, RUN_ROOT=str(tmp_path / "runs"))  # fmt: skip
    for i, cell in enumerate(cells[1:], start=1):
        exec(compile(cell, f"notebook cell {i}", "exec"), namespace)

    assert namespace["scores"].shape == (2, 2)  # evaluated at steps 0 and 200 (eval_every 2 chunks), two seeds
    assert len(namespace["sweep"].final_rows) == 4 and set(namespace["by_beta"]) == {1.0, 10.0}
    assert namespace["run"].step == 200 and namespace["same"]
    assert np.isfinite(namespace["episode_return"]) and namespace["t"] == 199  # Pendulum runs to its time limit
    assert (tmp_path / "runs" / "pretrain" / "curve.png").exists()
    # Fine-tuning continues the pretrained agent's updates and keeps the dataset in its buffer.
    pretrained, finetuned = namespace["pretrained"].states, namespace["finetuned"].states
    assert int(finetuned.buffer.size[0]) == 2_000 + 200 and len(namespace["before"]) == 2
    assert int(finetuned.agent.step[0]) == int(pretrained.agent.step[0]) + 200  # one update per env step
    assert all(r["phase"] == "online" for r in namespace["finetuned"].final_rows)
