"""Results tables: rows of overrides, per-row algorithm settings, the claims verdict, and resuming."""

import types
from pathlib import Path

import pytest
import yaml

from jaxrl.agents import ConfigError
from jaxrl.engine.reporting import switch_scores
from jaxrl.protocols.table import TableSpec, _cell_config, check_claims, format_table, run_table

SPEC = {
    "name": "t",
    "env": "gymnax/Pendulum-v1",
    "seeds": 2,
    "steps": 1000,
    "common": {"dataset": "medium-replay", "chunk_steps": 500, "corruption": {"mode": "random", "rate": 0.3}},
    "rows": {"obs": {"corruption": {"elements": ["observations"]}}, "rew": {"corruption": {"elements": ["rewards"]}}},
    "algorithms": {
        "iql": {"agent": {"hidden_dims": [8, 8]}},
        "riql": {"agent": {"hidden_dims": [8, 8]}, "rows": {"rew": {"agent": {"huber_sigma": 3.0, "num_critics": 3}}}},
    },
    "claims": [{"claim": "RIQL is best", "best": "riql", "among": ["iql", "riql"]}],
}


def _load(tmp_path, spec=SPEC):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return TableSpec.load(path)


def test_rows_merge_common_row_and_per_row_algorithm_settings(tmp_path):
    spec = _load(tmp_path)
    obs, rew = (_cell_config(spec, "riql", row, tmp_path) for row in ("obs", "rew"))
    assert obs.corruption.elements == ("observations",) and rew.corruption.elements == ("rewards",)
    assert obs.corruption.rate == rew.corruption.rate == 0.3  # from `common`, merged with the row's
    assert (obs.agent.huber_sigma, obs.agent.num_critics) == (1.0, 5)  # RIQL's defaults
    assert (rew.agent.huber_sigma, rew.agent.num_critics, rew.agent.hidden_dims) == (3.0, 3, (8, 8))
    assert _cell_config(spec, "iql", "rew", tmp_path).agent.name == "iql"


def test_levels_are_rows(tmp_path):
    spec = _load(tmp_path, {"name": "t", "env": "gymnax/Pendulum-v1", "levels": ["medium", "expert"], "algorithms": {"bc": {}}})
    assert _cell_config(spec, "bc", "expert", tmp_path).dataset == "expert"


def test_bad_specs_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown rows"):
        _load(tmp_path, {**SPEC, "algorithms": {"riql": {"rows": {"typo": {}}}}})
    with pytest.raises(ConfigError, match="'levels' or 'rows'"):
        _load(tmp_path, {k: v for k, v in SPEC.items() if k != "rows"})
    with pytest.raises(ConfigError, match="dip_window is a share of the online phase"):
        _load(tmp_path, {**SPEC, "dip_window": 1.5})


def _cell(m):
    """Two seeds one below and one above `m`: paired differences between such cells are exact."""
    return {"scores": [m - 1.0, m + 1.0], "mean": m, "std": 1.0}


def _cells(iql, riql):
    rows = ("obs", "rew")
    return {**{("iql", r): _cell(m) for r, m in zip(rows, iql, strict=True)},
            **{("riql", r): _cell(m) for r, m in zip(rows, riql, strict=True)}}  # fmt: skip


def test_claims_and_average(tmp_path):
    spec = _load(tmp_path)
    held = "**holds** (riql averages 15.0, best other iql 10.0; difference 5.0 [5.0, 5.0])"
    assert held in check_claims(spec, _cells([0, 20], [10, 20]))
    assert "**fails**" in check_claims(spec, _cells([30, 20], [10, 20]))
    assert "**inconclusive**" in check_claims(spec, _cells([10, 20], [10, 20]))  # a difference of 0: no decision
    cells = _cells([30, 20], [10, 20])
    cells[("riql", "rew")] = {"diverged": "nan"}
    assert "**inconclusive** (cells missing or diverged: riql)" in check_claims(spec, cells)
    table = format_table(spec, cells, ["iql", "riql"])
    assert "| rew | **20.0 [19.0, 21.0]** | diverged |" in table
    assert "| average | **25.0 [24.0, 26.0]** | - |" in table and "| IQM | **25.0 [" in table


def test_beats_each_and_growing_margin_claims(tmp_path):
    beats = {"claim": "RIQL beats IQL", "beats": "riql", "each_of": ["iql"]}
    grows = {"claim": "RIQL's lead grows", "margin_grows": "riql", "over": "iql"}
    spec = _load(tmp_path, {**SPEC, "claims": [beats, grows]})
    verdicts = check_claims(spec, _cells([0, 10], [5, 30])).splitlines()
    assert "RIQL beats IQL: **holds** (riql averages 17.5; iql 5.0 (difference 12.5 [12.5, 12.5]))" in verdicts[1]
    assert "RIQL's lead grows: **holds** (riql - iql: obs +5.0, rew +20.0; growth 15.0 [15.0, 15.0])" in verdicts[2]
    verdicts = check_claims(spec, _cells([0, 40], [5, 30])).splitlines()
    assert "**fails** (riql averages 17.5; iql 20.0" in verdicts[1]
    assert "**fails** (riql - iql: obs +5.0, rew -10.0" in verdicts[2]
    cells = _cells([0, 10], [5, 30])
    del cells[("iql", "rew")]
    assert all("inconclusive" in line for line in check_claims(spec, cells).splitlines()[1:])


def test_finished_cells_are_reused_only_under_the_same_settings(tmp_path, monkeypatch):
    import jaxrl.train

    calls = []

    def fake_train(cfg):
        calls.append((cfg.agent.name, cfg.corruption.elements))
        return types.SimpleNamespace(final_rows=[{"normalized_score": s, "eval_return": 0.0} for s in (1.0, 3.0)])

    monkeypatch.setattr(jaxrl.train, "train", fake_train)
    spec = _load(tmp_path)
    out = tmp_path / "out"
    run_table(spec, out, log=lambda *a: None)
    assert len(calls) == 4
    run_table(spec, out, log=lambda *a: None)
    assert len(calls) == 4  # all four cells reused
    edited = _load(tmp_path, {**SPEC, "algorithms": {**SPEC["algorithms"], "iql": {"agent": {"hidden_dims": [16, 16]}}}})
    table = run_table(edited, out, log=lambda *a: None)
    assert calls[4:] == [("iql", ("observations",)), ("iql", ("rewards",))]  # only the edited algorithm reruns
    assert "2.0 [1.0, 3.0]" in table and "RIQL is best: **inconclusive**" in table  # equal scores


O2O = {
    "name": "o2o",
    "env": "gymnax/Pendulum-v1",
    "levels": ["medium", "medium-replay"],
    "common": {"regime": "offline-to-online", "online_steps": 1000},
    "algorithms": {
        "calql": {},
        "cql": {},
        "cql-sac": {"algo": "cql", "agent": {"online_sac": True}},
        "sac": {"regime": "online", "steps": 1000, "online_steps": 0},
    },
    "claims": [
        {"claim": "Cal-QL has no drop", "no_dip": "calql"},
        {"claim": "Cal-QL dips less than CQL", "smaller_dip": "calql", "than": "cql"},
    ],
}


def _switch(offline, dip, final):
    return {
        "scores": final,
        "mean": sum(final) / len(final),
        "std": 0.0,
        "switch": {"offline": offline, "first online": dip, "dip": dip, "final": final},
    }


def test_columns_name_their_algorithm_and_steps(tmp_path):
    spec = _load(tmp_path, O2O)
    cql_sac = _cell_config(spec, "cql-sac", "medium", tmp_path)
    assert cql_sac.agent.name == "cql" and cql_sac.agent.for_online().name == "sac"
    assert cql_sac.run_dir.endswith("cql-sac-medium")
    scratch = _cell_config(spec, "sac", "medium", tmp_path)
    assert (scratch.resolved_regime, scratch.steps, scratch.online_steps) == ("online", 1000, 0)


def test_offline_to_online_cells_show_the_switch_and_dip_claims(tmp_path):
    spec = _load(tmp_path, O2O)
    cells = {
        ("calql", "medium"): _switch([50.0, 52.0], [49.5, 51.5], [70.0, 72.0]),  # dip -0.5, offline std 1
        ("calql", "medium-replay"): _switch([40.0, 40.0], [40.0, 41.0], [60.0, 60.0]),  # dip 0 and +1
        ("cql", "medium"): _switch([50.0, 50.0], [30.0, 30.0], [55.0, 55.0]),  # dip -20
        ("cql", "medium-replay"): _switch([40.0, 40.0], [20.0, 20.0], [45.0, 45.0]),
    }
    table = format_table(spec, cells, ["calql", "cql"])
    assert (
        "| medium | **51.0 [50.0, 52.0] -> 71.0 [70.0, 72.0] (dip -0.5 [-0.5, -0.5])** | "
        "50.0 [50.0, 50.0] -> 55.0 [55.0, 55.0] (dip -20.0 [-20.0, -20.0]) |" in table
    )
    claims = check_claims(spec, cells)
    assert (
        "- Cal-QL has no drop: **holds** (calql's dip relative to its offline score: medium -0.5 [-0.5, -0.5] "
        "(offline std 1.0), medium-replay 0.5 [0.0, 1.0] (offline std 0.0))" in claims
    )
    assert "- Cal-QL dips less than CQL: **holds** (mean dip calql +0.0, cql -20.0; difference 20.0 [" in claims
    cells[("calql", "medium")] = _switch([50.0, 52.0], [45.0, 47.0], [70.0, 72.0])  # dip -5, below 0 for sure
    assert "Cal-QL has no drop: **fails**" in check_claims(spec, cells)
    cells[("calql", "medium")] = _switch([50.0, 52.0], [48.0, 53.0], [70.0, 72.0])  # dips -2 and +1: undecided
    assert "Cal-QL has no drop: **inconclusive**" in check_claims(spec, cells)
    del cells[("cql", "medium")]
    assert "Cal-QL dips less than CQL: **inconclusive** (no offline-to-online cells for cql)" in check_claims(spec, cells)


def test_the_dip_is_the_lowest_score_inside_the_window():
    """Switch at 1000, 1000 online steps, evaluations every 100: the dip looks only as far as its window."""
    rows = [
        {"member": 0, "step": s, "score": v} for s, v in [(1000, 50.0), (1100, 50.0), (1200, 45.0), (1300, 30.0), (2000, 80.0)]
    ]
    assert switch_scores(rows, "score", 1000, 1000)[0] == {"offline": 50.0, "first online": 50.0, "dip": 50.0, "final": 80.0}
    assert switch_scores(rows, "score", 1000, 1000, window=0.2)[0]["dip"] == 45.0
    assert switch_scores(rows, "score", 1000, 1000, window=0.3)[0]["dip"] == 30.0
    assert switch_scores(rows, "score", 1000, 1000, window=0.05)[0]["dip"] == 50.0  # none inside: the first online one


TABLE_SPECS = sorted((Path(__file__).parents[1] / "experiments" / "tables").glob("*.yaml"))


@pytest.mark.parametrize("path", TABLE_SPECS, ids=[p.stem for p in TABLE_SPECS])
def test_committed_table_specs_give_valid_cells(path, tmp_path):
    """Every cell of every committed table is a valid run, so `make reproduce-*` cannot fail hours in."""
    spec = TableSpec.load(path)
    for algo in spec.algorithms:
        for row in spec.row_settings():
            _cell_config(spec, algo, row, tmp_path).validate()
