"""Help that teaches: every option described with its default, no Python types, examples that are real
commands, command lists that never cut a sentence, and a metrics table that fits 80 columns."""
from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from vislab.cli import app, command


def _commands():
    root = command()
    yield "vislab", root
    for name, group in root.commands.items():
        yield f"vislab {name}", group
        for sub, cmd in getattr(group, "commands", {}).items():
            yield f"vislab {name} {sub}", cmd


COMMANDS = dict(_commands())
LEAVES = {path: c for path, c in COMMANDS.items() if not hasattr(c, "commands")}


def _help(path: str, columns: int = 200) -> str:
    res = CliRunner().invoke(app, path.split()[1:] + ["--help"], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_every_option_has_a_description_and_a_default(path):
    cmd = LEAVES[path]
    for p in cmd.params:
        assert (p.help or "").strip(), f"{path}: {p.name} has no description"
        if p.param_type_name != "option":
            continue
        switch = p.is_flag and not p.secondary_opts and p.default in (False, None)  # off unless given
        shown = "[default:" in p.help or (p.default is not None and p.show_default is not False)
        assert switch or shown, f"{path}: {p.opts[0]} shows no default"


def test_defaults_come_from_the_config():
    """The help reads the lab's run config and recipe, so it cannot drift from the code."""
    from vislab.core.recipes import RECIPES
    from vislab.labs.fashion.config import FashionRunConfig
    train = _help("vislab fashion train")
    text = " ".join(train.split())
    cfg = FashionRunConfig()
    assert f"[default: {cfg.model.backbone}]" in text
    assert "[default: {}x{}]".format(*cfg.data.image_size) in text
    assert f"[default: {RECIPES['tuned']['epochs']}, from recipe tuned]" in text
    assert f"[default: {RECIPES['tuned']['lr']:g}, from recipe tuned]" in text
    assert f"[default: {cfg.train.seed}]" in text and "[default: --pretrained]" in text
    cifar = " ".join(_help("vislab cifar train").split())
    assert f"[default: {RECIPES['cnn-adam']['batch_size']}, from recipe cnn-adam]" in cifar


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_python_types_in_help(path):
    text = _help(path)
    for bad in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "{checkpoint}", "{images}", "<list"):
        assert bad not in text, f"{path} --help shows {bad}"
    assert not re.search(r"\{[A-Za-z_]+\}", text.split("Usage:")[1].splitlines()[0]), text


@pytest.mark.parametrize("path", sorted(LEAVES) + ["vislab"])
def test_help_ends_with_examples_that_are_real_commands(path):
    cmd = COMMANDS[path]
    assert cmd.epilog and cmd.epilog.startswith("Examples:"), f"{path} has no examples"
    examples = [e.strip() for e in cmd.epilog.split("\n\n")[1:] if e.strip().startswith("vislab")]
    assert 1 <= len(examples) <= 2, examples
    root = command()
    for line in examples:
        words = shlex.split(line)[1:]
        c = root
        while words and words[0].startswith("--") and hasattr(c, "commands"):  # root options (--debug)
            assert words.pop(0) in {o for p in c.params for o in p.opts}
        walked = ["vislab"]
        while words and hasattr(c, "commands") and words[0] in c.commands:
            walked.append(words[0])
            c = c.commands[words.pop(0)]
        if path != "vislab":
            assert " ".join(walked) == path, f"{line} is not an example of {path}"
        flags = {o for p in c.params for o in (*p.opts, *p.secondary_opts)}
        for w in words:
            if w.startswith("-"):
                assert w in flags, f"{path}: example `{line}` uses unknown {w}"
    assert examples[0] in _help(path)  # shown at the end of the help


def test_command_lists_never_cut_a_sentence():
    for path, group in COMMANDS.items():
        for name, sub in getattr(group, "commands", {}).items():
            short = sub.short_help or ""
            assert short.endswith(".") and not short.endswith("..."), f"{path} {name}: {short!r}"
    root = " ".join(re.sub(r"[│╭╮╰╯─]", " ", _help("vislab", 80)).split())
    for name, group in command().commands.items():
        assert group.short_help.split(". ")[0].rstrip(".") in root, name


def test_metrics_table_fits_80_columns():
    import io

    from rich.console import Console

    from vislab.labs.fashion.lab import _print_metrics
    tasks = ["gender", "masterCategory", "subCategory", "baseColour", "season", "articleType"]
    m = {"accuracy": 0.9213, "f1": 0.7812, "precision": 0.8011, "recall": 0.7704, "auroc": 0.9931, "loss": 0.3152}
    metrics = {t: dict(m) for t in tasks} | {"average": dict(m)}
    buf = io.StringIO()
    _print_metrics(Console(file=buf, width=80), metrics, {t: 0.5 for t in tasks}, "metrics on the test split")
    out = buf.getvalue()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for t in tasks:
        assert re.search(rf"\b{t}\b", out), t
    assert "92.1" in out and "78.1" in out and "50.0" in out  # accuracy, macro F1, majority, in percent
