"""The scripts' one front end (tyro, as `python -m jaxrl.train`): every reproduce script parses its presets,
a YAML file of protocol settings and flags in that order of precedence, and refuses bad values by name."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent.parent / "scripts"


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(SCRIPTS))
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("reproduce_l2m", "reproduce_hamster", "table", "reproduce_riql", "hamster_low_level")
        }
    finally:
        sys.path.remove(str(SCRIPTS))


def parse(script, argv):
    from jaxrl.config import protocol_command

    name = script.__name__.removeprefix("reproduce_")
    return protocol_command(script.Command, argv, name=name, description=script.__doc__, full=script.FULL)


def test_protocol_flags_presets_and_config_files_compose(scripts, tmp_path):
    l2m = scripts["reproduce_l2m"]
    command = parse(l2m, ["--seeds", "2", "--methods", "l2m", "full-ft", "--out", str(tmp_path / "a")])
    assert command.protocol.seeds == 2 and command.protocol.methods == ("l2m", "full-ft") and command.out.is_dir()
    full = parse(l2m, ["--full", "--seeds", "1", "--out", str(tmp_path / "b")])
    assert full.full and full.protocol.embedding_dim == 768 and full.protocol.seeds == 1  # the flag after the preset wins
    settings = tmp_path / "l2m.yaml"
    settings.write_text("seeds: 4\nnoises: [1.0, 0.1]\nsteps_per_task: 50\n")
    from_file = parse(l2m, ["--config", str(settings), "--steps-per-task", "60", "--out", str(tmp_path / "c")])
    assert from_file.protocol.seeds == 4 and from_file.protocol.noises == (1.0, 0.1)
    assert from_file.protocol.steps_per_task == 60
    hamster = parse(
        scripts["reproduce_hamster"], ["--image-size", "64", "--tasks", "reach", "touch", "--out", str(tmp_path / "d")]
    )
    assert hamster.protocol.image_size == 64 and hamster.protocol.tasks == ("reach", "touch")


def test_protocol_command_errors_name_the_problem(scripts, tmp_path):
    l2m, out = scripts["reproduce_l2m"], ["--out", str(tmp_path)]
    with pytest.raises(SystemExit, match="unknown continual method"):
        parse(l2m, ["--methods", "adapters", *out])
    with pytest.raises(SystemExit, match="seeds must be >= 1"):
        parse(scripts["reproduce_hamster"], ["--seeds", "0", *out])
    bad = tmp_path / "bad.yaml"
    bad.write_text("seedz: 3\n")
    with pytest.raises(SystemExit, match=r"unknown setting\(s\) \['seedz'\]"):
        parse(l2m, ["--config", str(bad), *out])
    with pytest.raises(SystemExit, match="protocol config file not found"):
        parse(l2m, ["--config", str(tmp_path / "missing.yaml"), *out])


def test_table_commands_parse(scripts):
    table, riql = scripts["table"], scripts["reproduce_riql"]
    args = table.parse(table.TableCommand, ["a.yaml", "b.yaml", "--only", "iql", "--seeds", "2"], "", "table.py")
    assert args.specs == (Path("a.yaml"), Path("b.yaml")) and args.only == ("iql",) and args.seeds == 2
    args = table.parse(riql.Command, ["--hopper", "--steps", "500"], "", "reproduce_riql.py")
    assert args.hopper and not args.full and args.steps == 500
    with pytest.raises(SystemExit):  # tyro: an unknown flag is an error, not ignored
        table.parse(table.TableCommand, ["a.yaml", "--seed", "2"], "", "table.py")


@pytest.mark.parametrize("script", ["reproduce_l2m", "reproduce_hamster", "reproduce_riql", "reproduce_ro2o", "reproduce_h2o",
                                    "table", "h2o_gap"])  # fmt: skip
def test_every_script_has_help(script, capsys):
    sys.path.insert(0, str(SCRIPTS))
    try:
        module = importlib.import_module(script)
    finally:
        sys.path.remove(str(SCRIPTS))
    argv = ["--help"]
    with pytest.raises(SystemExit) as done:
        module.main(argv)
    assert done.value.code == 0
    assert f"python scripts/{script}.py" in capsys.readouterr().out


def test_make_help_lists_every_target():
    root = Path(__file__).resolve().parents[1]
    phony = next(line for line in (root / "Makefile").read_text().splitlines() if line.startswith(".PHONY:")).split()[1:]
    out = subprocess.run(["make", "-s", "help"], cwd=root, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines() if line.strip()}
    assert sorted(listed) == sorted(t for t in phony if t != "help"), "a target without a `## ` description"
    assert all(len(text) > 10 for text in listed.values())


def test_the_low_level_script_parses_the_protocol_settings_and_its_encoding(scripts):
    module = scripts["hamster_low_level"]
    command = module.parse(["--encoding", "channels", "--state", "proprio", "--demo-episodes", "300"])
    assert (command.encoding, command.protocol.state, command.protocol.demo_episodes) == ("channels", "proprio", 300)
    assert command.protocol.offdomain_paths == 1  # the low level needs no off-domain data
    with pytest.raises(SystemExit, match="encoding must be one of overlay, channels, vector, lookahead"):
        module.parse(["--encoding", "pixels"])
    with pytest.raises(SystemExit, match="state must be one of"):
        module.parse(["--state", "all"])


def test_every_train_flag_has_help_text(capsys):
    """`python -m jaxrl.train [AGENT] --help` describes every flag (a flag shown with only its default is a gap)."""
    import re

    from jaxrl.agents import AGENTS
    from jaxrl.train import parse_args

    # a flag's own line (boxed on a terminal, indented two spaces otherwise) with nothing but its default
    bare = re.compile(r"^(?:│ |  )(--[a-z0-9.-]+) [A-Z{][^ ]* +\(default[^)]*\)[ │]*$")
    missing = {}
    for name in ["", *AGENTS]:
        with pytest.raises(SystemExit):
            parse_args([name, "--help"] if name else ["--help"], connect=False)
        flags = [m.group(1) for line in capsys.readouterr().out.splitlines() if (m := bare.match(line))]
        if flags:
            missing[name or "(common)"] = flags
    assert not missing, f"flags without help text: {missing}"
