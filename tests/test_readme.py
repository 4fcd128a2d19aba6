"""Every command in the documentation is checked, so an example cannot rot: README.md, jaxrl/README.md and
every experiments/results/*/README.md. Commands are the lines of ```bash blocks (comments stripped, `\\`
continuations joined) and inline code starting with `python -m jaxrl.train`, `python scripts/` or `make `
(or `scripts/NAME.py ARGS`, read as `python scripts/NAME.py ARGS`).

- `python -m jaxrl.train ARGS`: parsed by `jaxrl.train.parse_args`, the CLI's own parsing (cluster flags,
  `--config`, `--resume`, tyro), without joining a cluster or training, and the TrainConfig validated.
  `--help` must exit with status 0. Only parsed, not run: a `--dataset` file or an `--init-from` run
  directory is not opened (validation checks a dataset path's form, not that the file exists), so
  placeholders such as `path/to/hopper-medium-replay-v2.hdf5` pass; a `--resume RUN_DIR` that does not
  exist (`runs/x`, `/shared/runs/iql8`) is replaced by a stand-in run directory whose config.json records
  IQL with every default setting, so the rest of the command is parsed over a recorded config and validated.
- `python scripts/NAME.py ARGS`: the script exists and its `main` parses ARGS with its own front end
  (tyro or argparse) and stops right after parsing; the reproduce scripts built on
  `jaxrl.config.protocol_command` also validate their protocol settings (with `--out` in a temporary
  directory). Placeholders in script commands (`ENV`, `P`, `pathworld/TASK`, `REV`) stand for the example
  values in PLACEHOLDERS; an argument list elided as `...` checks only that the script exists.
- `make TARGET [VAR=value ...]`: `make -n` succeeds, and every `python -m jaxrl.train` or `python
  scripts/` line the target would run (with those variables) is checked as above.
- `srun CMD`: CMD is checked. `pip install`, `git clone`, `cd`, `tensorboard` lines are not commands of
  this repository and are skipped; any other program fails the test, so a new kind of command is noticed.
- ```python blocks compile, and the names they import exist.
- Every relative link of these pages resolves (to a file, and to a heading of a page), and README.md links
  every results page.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "jaxrl" / "README.md", *sorted((ROOT / "experiments" / "results").glob("*/README.md"))]
SKIPPED = ("pip", "git", "cd", "tensorboard")  # not this repository's commands
PLACEHOLDERS = {"ENV": "brax/hopper", "P": "small", "pathworld/TASK": "pathworld/push", "REV": "HEAD~1"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")  # inline code may wrap onto the next line
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _commands() -> list[tuple[str, str]]:
    """(page, command line) for every command of every page."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for lang, body in FENCE.findall(text):
            if lang not in ("bash", "sh", "shell"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                line = " ".join(shlex.split(line, comments=True))
                if line:
                    found.append((_name(doc), line))
        for code in INLINE.findall(FENCE.sub("", text)):
            code = " ".join(code.split())
            if code.startswith("scripts/") and " " in code:  # `scripts/h2o_gap.py --samples 0` in a sentence
                code = "python " + code
            if code.startswith(("python -m jaxrl.train", "python scripts/", "make ")):
                found.append((_name(doc), code))
    seen: set[str] = set()
    return [(page, c) for page, c in found if not (c in seen or seen.add(c))]  # each command once, its first page


def _python_blocks() -> list[tuple[str, str]]:
    return [(_name(doc), body) for doc in DOCS for lang, body in FENCE.findall(doc.read_text()) if lang == "python"]


COMMANDS = _commands()


# --------------------------------------------------------------------------------------------- the checkers


@pytest.fixture(scope="module")
def stand_in_run(tmp_path_factory) -> Path:
    """A run directory as `--resume` reads one: config.json recording IQL with every default setting."""
    from jaxrl.agents import IQL
    from jaxrl.config import TrainConfig
    from jaxrl.train import _recorded_config

    run = tmp_path_factory.mktemp("run")
    (run / "config.json").write_text(json.dumps(_recorded_config(TrainConfig(agent=IQL()), None), default=str))
    return run


def check_train(args: list[str], stand_in_run: Path) -> None:
    from jaxrl.train import parse_args

    if "--help" in args or "-h" in args:
        with pytest.raises(SystemExit) as done:
            parse_args(args, connect=False)
        assert done.value.code in (0, None), f"--help exited with {done.value.code}"
        return
    if "--resume" in args:
        i = args.index("--resume")
        if i + 1 < len(args) and not args[i + 1].startswith("-") and not (ROOT / args[i + 1]).is_dir():
            args = [*args[: i + 1], str(stand_in_run), *args[i + 2 :]]
    cfg, _ = parse_args(args, connect=False)
    cfg.validate()


class _Parsed(Exception):
    """Raised by the scripts' front ends right after parsing, so that nothing runs."""


def check_script(script: str, args: list[str], monkeypatch, tmp_path) -> None:
    import tyro

    import jaxrl.config

    path = ROOT / script
    assert path.is_file(), f"{script} does not exist"
    if "..." in args:  # elided arguments: only the script itself is checked
        return
    args = [PLACEHOLDERS.get(a, a) for a in args]
    monkeypatch.syspath_prepend(str(path.parent))
    module = importlib.import_module(path.stem)

    real_cli, real_parse_args, real_protocol = tyro.cli, argparse.ArgumentParser.parse_args, jaxrl.config.protocol_command
    inside_protocol = []

    def cli(*a, **k):
        result = real_cli(*a, **k)
        if inside_protocol:
            return result
        raise _Parsed(result)

    def parse_args(self, args=None, namespace=None):
        raise _Parsed(real_parse_args(self, args, namespace))

    def protocol_command(command_cls, argv, **kw):  # parses and validates the settings; its --out is temporary
        inside_protocol.append(True)
        raise _Parsed(real_protocol(command_cls, [*argv, "--out", str(tmp_path / "out")], **kw))

    monkeypatch.setattr(tyro, "cli", cli)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    if hasattr(module, "protocol_command"):
        monkeypatch.setattr(module, "protocol_command", protocol_command)
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    takes_argv = bool(inspect.signature(module.main).parameters)
    with pytest.raises((_Parsed, SystemExit)) as done:
        module.main(args) if takes_argv else module.main()
    if done.type is SystemExit:
        assert done.value.code in (0, None) and "--help" in args, f"{script} {' '.join(args)}: exit {done.value.code}"


def check_make(args: list[str], monkeypatch, tmp_path, stand_in_run) -> None:
    out = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"make -n {' '.join(args)}: {out.stderr.strip()}"
    for line in out.stdout.splitlines():  # what the target runs, e.g. `.venv/bin/python scripts/table.py ...`
        words = shlex.split(line)
        for i, word in enumerate(words[:-1]):
            if word.endswith("/python") or word == "python":
                if words[i + 1 : i + 3] == ["-m", "jaxrl.train"]:
                    check_train(words[i + 3 :], stand_in_run)
                elif words[i + 1].startswith("scripts/"):
                    check_script(words[i + 1], words[i + 2 :], monkeypatch, tmp_path)
                break


def check(command: str, monkeypatch, tmp_path, stand_in_run) -> None:
    words = shlex.split(command)
    if words[0] == "srun":  # srun [options] CMD
        words = words[1:]
        while words[0].startswith("-"):
            words = words[1:]
    for word in words:
        if word.startswith("experiments/"):
            assert (ROOT / word).exists(), f"{word} does not exist"
    if words[:3] == ["python", "-m", "jaxrl.train"]:
        check_train(words[3:], stand_in_run)
    elif words[0] == "python" and len(words) > 1 and words[1].startswith("scripts/"):
        check_script(words[1], words[2:], monkeypatch, tmp_path)
    elif words[0] == "make":
        check_make(words[1:], monkeypatch, tmp_path, stand_in_run)
    else:
        assert words[0] in SKIPPED, f"no check for this kind of command: {command}"


# ----------------------------------------------------------------------------------------------- the tests


def test_the_pages_have_commands():
    pages = {page for page, _ in COMMANDS}
    assert "README.md" in pages and "jaxrl/README.md" in pages
    assert sum(command.startswith("python -m jaxrl.train") for _, command in COMMANDS) >= 20


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_command(page, command, monkeypatch, tmp_path, stand_in_run, capsys):
    try:
        check(command, monkeypatch, tmp_path, stand_in_run)
    except SystemExit as err:
        out = capsys.readouterr()
        pytest.fail(f"{page}: `{command}` exited with {err.code}:\n{out.out[-2000:]}{out.err[-2000:]}")


@pytest.mark.parametrize(("page", "code"), _python_blocks())
def test_python_blocks_compile_and_import(page, code):
    tree = ast.parse(code, page)
    compile(tree, page, "exec")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{page}: {node.module} has no {alias.name}"


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_relative_links_resolve(doc):
    text = FENCE.sub("", doc.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        page = (doc.parent / path) if path else doc
        assert page.exists(), f"{_name(doc)}: the link {target} leads nowhere"
        if anchor and page.suffix == ".md":
            assert anchor in _anchors(page), f"{_name(doc)}: {_name(page.resolve())} has no heading #{anchor}"


def test_readme_indexes_every_results_page():
    links = {(ROOT / t.split("#")[0]).resolve() for t in LINK.findall((ROOT / "README.md").read_text())}
    pages = sorted((ROOT / "experiments" / "results").glob("*/README.md"))
    assert pages, "no results pages"
    missing = [_name(p) for p in pages if p.resolve() not in links and p.parent.resolve() not in links]
    assert not missing, f"README.md does not link {missing}"
