"""Fail fast, never a traceback: every bad flag, config value, checkpoint and image argument is one line with
the flag, the allowed values or range and the nearest name, and an exit code (1 input, 2 usage), before any
heavy import or data read. Each case runs in-process (milliseconds); one subprocess runs them all in a
fresh interpreter and checks that torch, timm and Lightning were never imported."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner


def fake_checkpoint(path: Path, lab: str) -> Path:
    """A vislab checkpoint of `lab` with one tensor, written without torch (for the error paths)."""
    import numpy as np
    from safetensors.numpy import save_file

    from vislab.core.checkpoint import FORMAT
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(2, np.float32)}, str(path),
              metadata={"vislab": json.dumps({"format": FORMAT, "lab": lab, "config": {}})})
    return path


CIFAR, FASHION = "{tmp}/cifar-run/checkpoints/best.safetensors", "{tmp}/fashion-run/checkpoints/best.safetensors"
VAE = "{tmp}/vae-run/checkpoints/best.safetensors"
FACE = "{tmp}/face.pgm"
LAB_WORDING = "is a 'cifar' checkpoint, not a"
CASES: list[tuple[list[str], int, list[str]]] = [
    (["fashion", "evaluate", CIFAR, "--split", "bogus"], 2,
     ["--split must be one of test, val, train, all; got 'bogus'"]),
    (["fashion", "evaluate", CIFAR, "--split", "tset"], 2, ["(did you mean test?)"]),
    (["fashion", "train", "--epochs", "-1"], 1,
     ["train.epochs (--epochs): Input should be greater than or equal to 1 (got -1)"]),
    (["fashion", "train", "--batch-size", "0", "--lr", "-1"], 1,
     ["train.batch_size (--batch-size): Input should be greater than or equal to 1",
      "train.lr (--lr): Input should be greater than 0"]),
    (["fashion", "train", "--limit", "0"], 1, ["data.limit (--limit): Input should be greater than or equal to 1"]),
    (["fashion", "train", "--backbone", "efficientnet_litte0"], 1,
     ["model.backbone (--backbone): unknown timm backbone 'efficientnet_litte0'; did you mean efficientnet_lite0"]),
    (["siamese", "train", "--backbone", "resnet5O"], 1, ["unknown timm backbone 'resnet5O'; did you mean resnet50"]),
    (["cifar", "train", "--model", "cnnn"], 1,
     ["model.name (--model): unknown CIFAR model 'cnnn' (did you mean cnn?)"]),
    (["cifar", "train", "--model", "blocks:ABC"], 1, ["'blocks:ABC' has 3 block letters, needs 8"]),
    (["fashion", "train", "train.epoch=3"], 1,
     ["train.epoch: unknown field; did you mean train.epochs or train.stop_epoch?"]),
    (["fashion", "train", "--recipe", "fancy"], 1,
     ["unknown recipe 'fancy'; the fashion lab's recipes are baseline, tuned"]),
    (["fashion", "train", "--recipe", "tunned"], 1, ["(did you mean tuned?)"]),
    (["cifar", "train", "--recipe", "tuned"], 1,
     ["recipe 'tuned' belongs to the fashion lab; the cifar lab's recipes are blocks-exp, cnn-adam"]),
    (["siamese", "train", "--accelerator", "gpux"], 2, ["--accelerator must be one of", "(did you mean gpu?)"]),
    (["fashion", "train", "--image-size", "128"], 2, ["--image-size must look like 128x96"]),
    (["fashion", "evaluate", CIFAR], 1, [LAB_WORDING + " fashion one"]),
    (["fashion", "predict", CIFAR, FACE], 1, [LAB_WORDING + " fashion one"]),
    (["siamese", "evaluate", CIFAR], 1, [LAB_WORDING + " Siamese one"]),
    (["siamese", "verify", FACE, FACE, "--run", CIFAR], 1, [LAB_WORDING + " Siamese one"]),
    (["vae", "evaluate", CIFAR], 1, [LAB_WORDING + " VAE one"]),
    (["vae", "sample", "{tmp}/cifar-run"], 1, [LAB_WORDING + " VAE one"]),  # a run folder: its best checkpoint
    (["cifar", "evaluate", FASHION], 1, ["is a 'fashion' checkpoint, not a CIFAR one"]),
    (["fashion", "evaluate", "{tmp}/nowhere"], 1, ["nowhere: no such run folder or checkpoint"]),
    (["fashion", "predict", FASHION, "{tmp}/empty"], 1, ["holds no images (.bmp, .gif, .jpeg, .jpg"]),
    (["fashion", "predict", FASHION, "{tmp}/empty/*.jpg"], 1, ["*.jpg' matches no file"]),
    (["fashion", "predict", FASHION, "{tmp}/nope.jpg"], 1, ["nope.jpg: no such file or folder"]),
    (["fashion", "tag", CIFAR, "{tmp}/empty", "--out", "{tmp}/t.csv"], 1, [LAB_WORDING + " fashion one"]),
    (["fashion", "tag", FASHION, "{tmp}/nope", "--out", "{tmp}/t.csv"], 1, ["nope: no such file or folder"]),
    (["fashion", "tag", FASHION, "{tmp}/empty", "--backend", "onnxx"], 2, ["(did you mean onnx?)"]),
    (["serve", CIFAR], 1, [LAB_WORDING + " fashion one"]),
    (["export", VAE, "--out", "{tmp}/m.onnx"], 1,
     ["is a 'vae' checkpoint: vislab export takes fashion, cifar, siamese models"]),
    (["export", CIFAR, "--int8", "--out", "{tmp}/m.onnx"], 2, ["--int8 is offered for fashion models"]),
    (["export", FASHION, "--format", "tflite"], 2, ["--format must be one of onnx"]),
    (["fashion", "explain", FASHION, FACE, "--method", "cam"], 2, ["--method must be one of gradcam, gradcam++"]),
    (["fashion", "explain", FASHION, FACE, "--class", "Navy Blue"], 2, ["--class needs --task"]),
    (["fashion", "explain", CIFAR, FACE], 1, [LAB_WORDING + " fashion one"]),
    (["fashion", "explain", FASHION, "{tmp}/nope.jpg"], 1, ["IMAGE {tmp}/nope.jpg: no such file"]),
    (["cifar", "explain", CIFAR, "{tmp}/nope.png"], 1, ["IMAGE {tmp}/nope.png: no such file"]),
    (["cifar", "explain", FASHION, FACE], 1, ["is a 'fashion' checkpoint, not a CIFAR one"]),
    (["siamese", "verify", FACE, FACE, "--run", "{tmp}/nowhere"], 1, ["no such run folder or checkpoint"]),
    (["vae", "sample", "{tmp}/nowhere", "--prior", "fited"], 2, ["(did you mean fitted?)"]),
    (["fashion", "train", "--nosuch"], 2, ["No such option"]),
    (["fashion", "train", "--data", "{tmp}/nowhere"], 1, ["--data (data.root) {tmp}/nowhere: no such folder"]),
    (["fashion", "eda", "--data", "{tmp}", "--csv", "labels.csv"], 1,
     ["--csv (data.csv) {tmp}/labels.csv: no such file"]),
    (["cifar", "train", "--data", "{tmp}/nowhere"], 1, ["--data (data.root) {tmp}/nowhere: no such folder"]),
    (["siamese", "train", "--data", "{tmp}/nowhere"], 1, ["--data (data.root) {tmp}/nowhere: no such folder"]),
    (["vae", "train", "--data", "{tmp}/nowhere"], 1, ["--data (data.root) {tmp}/nowhere: no such folder"]),
]
"""(arguments, exit code, parts of the one error line) of every fail-fast rule; {tmp} is a test folder."""


def materialize(tmp: Path) -> None:
    """The files the cases name: a CIFAR and a fashion checkpoint, an empty folder, a face image."""
    fake_checkpoint(Path(CIFAR.format(tmp=tmp)), "cifar")
    fake_checkpoint(Path(FASHION.format(tmp=tmp)), "fashion")
    fake_checkpoint(Path(VAE.format(tmp=tmp)), "vae")
    (tmp / "empty").mkdir(exist_ok=True)
    Path(FACE.format(tmp=tmp)).write_bytes(b"P5 1 1 255 \x00")


def args_of(case, tmp: Path) -> list[str]:
    return [a.format(tmp=tmp) for a in case[0]]


def _invoke(args: list[str]):
    from vislab.cli import app
    return CliRunner().invoke(app, args, prog_name="vislab")


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[0][:2] + c[0][-2:]) for c in CASES])
def test_bad_input_is_one_clear_line(case, tmp_path, monkeypatch):
    import vislab.core.cli as core_cli
    monkeypatch.setattr(core_cli, "cuda_possible", lambda: False)
    materialize(tmp_path)
    _, code, parts = case
    res = _invoke(args_of(case, tmp_path))
    assert res.exit_code == code, res.output
    text = " ".join(res.output.split())  # the usage-error box of typer may wrap; our errors never do
    for part in parts:
        assert part.format(tmp=tmp_path) in text, res.output
    assert "Traceback" not in res.output
    if code == 1:  # ours: exactly one line on stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_accelerator_gpu_without_one_is_one_line(monkeypatch):
    import vislab.core.cli as core_cli
    monkeypatch.setattr(core_cli, "cuda_possible", lambda: False)
    res = _invoke(["fashion", "train", "--accelerator", "gpu"])
    assert res.exit_code == 1 and "there is no CUDA GPU on this machine" in res.output
    assert "--accelerator cpu" in res.output


def test_every_case_answers_without_importing_torch(tmp_path):
    """All cases in one fresh interpreter: none imports torch, timm, torchmetrics or Lightning, or reads data."""
    script = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_fail_fast import CASES, _invoke, args_of, materialize
import vislab.core.cli as core_cli
core_cli.cuda_possible = lambda: False
tmp = Path({str(tmp_path)!r})
materialize(tmp)
codes = [_invoke(args_of(c, tmp)).exit_code for c in CASES]
heavy = sorted(m for m in ("torch", "timm", "torchmetrics", "lightning_fabric", "pandas") if m in sys.modules)
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["codes"] == [c for _, c, _ in CASES]
    assert out["heavy"] == [], f"an error path imported {out['heavy']}"


def test_version_and_debug_flag():
    from vislab import __version__
    res = _invoke(["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"vislab {__version__}"


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch):
    import vislab.labs.fashion.cli as fcli

    def boom(*a, **k):
        raise KeyError("lost key")
    monkeypatch.setattr(fcli, "build_config", boom)
    monkeypatch.setenv("VISLAB_DEBUG", "0")  # recorded first: the --debug below sets it, teardown restores it
    res = _invoke(["fashion", "train"])
    assert res.exit_code == 3
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "vislab fashion train: unexpected KeyError: 'lost key'" in line and "--debug" in line
    res = _invoke(["--debug", "fashion", "train"])  # the root flag: the real exception, with its traceback
    assert isinstance(res.exception, KeyError)
    monkeypatch.setenv("VISLAB_DEBUG", "0")
    assert _invoke(["fashion", "train"]).exit_code == 3
    monkeypatch.setenv("VISLAB_DEBUG", "1")
    assert isinstance(_invoke(["fashion", "train"]).exception, KeyError)


def test_ctrl_c_exits_130_with_the_resume_hint(monkeypatch):
    import vislab.labs.fashion.cli as fcli

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(fcli, "build_config", interrupt)
    monkeypatch.setenv("VISLAB_DEBUG", "")
    res = _invoke(["fashion", "train"])
    assert res.exit_code == 130 and "interrupted" in res.stderr and "--resume" in res.stderr


def test_every_command_is_friendly():
    """Every command's callback goes through `friendly` (one-line errors, exit codes)."""
    from vislab.cli import command
    root = command()
    seen = 0
    for lab in root.commands.values():
        for cmd in getattr(lab, "commands", {"": lab}).values():
            assert getattr(cmd.callback, "friendly", False), cmd.name
            seen += 1
    assert seen >= 25
