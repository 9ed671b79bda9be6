"""The shared engine through the fashion lab: checkpoints, logs, exact resume, NaN stops,
untrusted checkpoints, 2-process DDP on CPU."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_overrides
from vislab.core import checkpoint as ckpt
from vislab.core.engine import NonFiniteLoss
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config

CLI = [sys.executable, "-m", "vislab"]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_train_writes_checkpoints_logs_and_report(tiny_run):
    run_dir, cfg = tiny_run
    best, last = run_dir / "checkpoints" / "best.safetensors", run_dir / "checkpoints" / "last.safetensors"
    meta = ckpt.read_meta(last)
    assert meta["epoch"] == 5 and len(meta["history"]) == 5
    assert set(meta["encoders"]) == set(cfg.data.label_cols)
    assert meta["tasks"] == {t: len(c) for t, c in meta["encoders"].items()}
    assert {"vislab", "torch", "timm"} <= set(meta["versions"])
    assert meta["config"]["model"]["backbone"] == "test_efficientnet"
    # best = lowest validation loss among the epochs
    losses = [h["val_loss"] for h in meta["history"]]
    assert ckpt.read_meta(best)["epoch"] == int(np.argmin(losses)) + 1
    assert json.loads((run_dir / "checkpoints" / "best.json").read_text())["kind"] == "best"
    rows = (run_dir / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 6 and "val_accuracy" in rows[0] and "train_images_per_s" in rows[0]
    assert any((run_dir / "tensorboard").iterdir())
    m = json.loads((run_dir / "metrics.json").read_text())
    assert set(m["metrics"]) == set(cfg.data.label_cols) | {"average"}
    for v in m["metrics"].values():
        assert 0 <= v["accuracy"] <= 1 and 0 <= v["f1"] <= 1 and 0 <= v["auroc"] <= 1 and v["loss"] > 0
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    for name in ["curves.png", "errors.png"] + [f"confusion_{t}.png" for t in cfg.data.label_cols]:
        assert (run_dir / "figures" / name).is_file()
    assert (run_dir / "report.md").is_file()


def test_metrics_carry_bootstrap_intervals(tiny_run):
    run_dir, cfg = tiny_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert set(m["intervals"]) == {*cfg.data.label_cols, "average"} and m["tta"] is False
    for t, iv in m["intervals"].items():
        for k in ("accuracy", "f1"):
            lo, hi = iv[k]
            assert 0 <= lo <= m["metrics"][t][k] + 1e-9 and m["metrics"][t][k] <= hi + 1e-9 <= 1 + 1e-9, (t, k)
    assert "accuracy, 95% interval" in (run_dir / "report.html").read_text()


def test_steps_csv_holds_every_step_on_the_history_scale(tiny_run):
    """steps.csv: one row per optimizer step; an epoch's mean step loss is that epoch's train_loss (the same
    quantity: the mean over tasks, equal batches)."""
    import csv
    run_dir, _ = tiny_run
    hist = ckpt.read_meta(run_dir / "checkpoints" / "last.safetensors")["history"]
    with open(run_dir / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, hist[-1]["step"] + 1))
    for h in hist:
        losses = [float(r["loss"]) for r in rows if int(r["epoch"]) == h["epoch"]]
        assert np.mean(losses) == pytest.approx(h["train_loss"], rel=1e-4), h["epoch"]


def test_run_report_puts_what_matters_first(tiny_run):
    """The card (best epoch and why, each task against its baseline, warnings) leads; per-class tables sorted
    by F1; the hyperparameters that ran, resolved from the recipe (never null)."""
    from vislab.core.recipes import RECIPES
    run_dir, cfg = tiny_run
    md = (run_dir / "report.md").read_text()
    m = json.loads((run_dir / "metrics.json").read_text())
    first = md.split("\n## ")[1]
    assert first.startswith("Summary") and "Best epoch" in first and "lowest val loss" in first
    for t in cfg.data.label_cols:
        acc, base = m["metrics"][t]["accuracy"], m["majority_baseline"][t]
        assert f"| {t} | {100 * acc:.1f}% | {100 * base:.1f}% | {100 * (acc - base):+.1f} |" in first
    assert md.index("## Summary") < md.index("| key | value |")  # above the run's details
    per_class = md.split("## Per-class metrics")[1].split("\n## ")[0]
    for t in cfg.data.label_cols:
        table = per_class.split(f"**{t}: per class, worst F1 first")[1].split("\n\n")[1]
        f1 = [float(line.split("|")[4]) for line in table.splitlines() if line.startswith("| ")
              and "macro average" not in line and "---" not in line and "| class |" not in line]
        assert f1 == sorted(f1) and f1, t
    hyper = md.split("## Hyperparameters")[1].split("\n## ")[0]
    tuned = RECIPES["tuned"]
    assert f"| train.optimizer | {tuned['optimizer']} | recipe tuned |" in hyper
    assert "| train.lr | 0.01 | config |" in hyper  # tiny_overrides sets it
    assert f"| lr of the pretrained backbone (if any) | {0.01 * tuned['backbone_lr_mult']:g} |" in hyper
    assert "null" not in hyper and "None" not in hyper


def test_a_failed_run_leaves_no_half_made_folder(synthetic_root, tmp_path, monkeypatch):
    """Failing before the first checkpoint removes the run folder; failing after it keeps the folder for
    --resume, marked FAILED.json, which the successful resume removes."""
    import pandas as pd
    df = pd.read_csv(synthetic_root / "styles.csv")
    df.to_csv(tmp_path / "styles.csv", index=False)
    (tmp_path / "images").mkdir()  # no image at all: the run fails in data preparation
    cfg = load_config(None, tiny_overrides(tmp_path, tmp_path / "runs", name="broken"))
    with pytest.raises(Exception, match="no rows left"):
        fashion.train(cfg, progress=False)
    assert not (tmp_path / "runs" / "broken").exists()
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path / "runs", name="late", **{"train.epochs": 1}))

    def boom(*a, **k):
        raise RuntimeError("disk full while writing the report")
    monkeypatch.setattr(fashion, "evaluate_run", boom)
    with pytest.raises(RuntimeError):
        fashion.train(cfg, progress=False)
    run = tmp_path / "runs" / "late"
    failed = json.loads((run / "FAILED.json").read_text())
    assert "disk full" in failed["error"] and failed["resume"] == f"--resume {run}"
    monkeypatch.undo()
    fashion.train(cfg, resume=run, progress=False)
    assert not (run / "FAILED.json").exists() and (run / "report.html").is_file()


def test_tiny_model_learns_the_easy_synthetic_tasks(tiny_run):
    run_dir, _ = tiny_run
    m = json.loads((run_dir / "metrics.json").read_text())
    # masterCategory/articleType are shapes: even a 100k-parameter net beats the majority class
    for t in ("masterCategory", "articleType"):
        assert m["metrics"][t]["accuracy"] > m["majority_baseline"][t] + 0.1, (t, m["metrics"][t],
                                                                               m["majority_baseline"][t])


@pytest.mark.parametrize("extra", [{}, {"train.ema_decay": 0.9, "train.mixup": 0.4, "train.cutmix": 1.0,
                                         "train.task_weighting": "uncertainty"}], ids=["plain", "ema-mix-uncertainty"])
def test_resume_after_kill_continues_exactly(synthetic_root, tmp_path, extra):
    """Kill a run (SIGKILL) after its first epoch checkpoint; --resume ends with the same weights
    as an uninterrupted run (with EMA: the raw weights and their average both restored; with mixup / CutMix the
    same batches mixed the same way; with learned task weights, those weights too)."""
    ov = tiny_overrides(synthetic_root, tmp_path, **{"train.epochs": 3, "train.deterministic": "true", **extra})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(CLI + ["fashion", "train", "--name", "straight", "--no-progress"] + ov,
                              env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]
    proc = subprocess.Popen(CLI + ["fashion", "train", "--name", "killed", "--no-progress"] + ov, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.safetensors"
    t0 = time.time()
    while time.time() - t0 < 300:
        if last.is_file():
            try:
                if ckpt.read_meta(last)["epoch"] >= 1:
                    break
            except ckpt.CheckpointError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_epoch = ckpt.read_meta(last)["epoch"]
    assert killed_epoch < 3, "the run finished before it could be killed"
    res = subprocess.run(CLI + ["fashion", "train", "--resume", str(tmp_path / "killed"), "--no-progress"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resumed from" in res.stdout
    a = load_file(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b = load_file(last)
    assert ckpt.read_meta(last)["epoch"] == 3
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    ha = ckpt.read_meta(tmp_path / "straight" / "checkpoints" / "last.safetensors")["history"]
    hb = ckpt.read_meta(last)["history"]
    assert [round(h["val_loss"], 6) for h in ha] == [round(h["val_loss"], 6) for h in hb]
    if "train.task_weighting" in extra:
        sa = ckpt.load_state(tmp_path / "straight" / "checkpoints" / "last.state.pt")["objective"]["log_vars"]
        sb = ckpt.load_state(tmp_path / "killed" / "checkpoints" / "last.state.pt")["objective"]["log_vars"]
        assert not torch.equal(sa, torch.zeros_like(sa))
        torch.testing.assert_close(sa, sb, rtol=0, atol=1e-6)


class NanAt:
    """Objective wrapper that returns NaN at a given training step (evaluation runs without grad)."""

    def __init__(self, inner, at: int):
        self.inner, self.at, self.calls = inner, at, 0

    def __call__(self, out, y):
        loss, parts = self.inner(out, y)
        self.calls += torch.is_grad_enabled()
        return (loss * float("nan") if self.calls == self.at else loss), parts

    def make_metrics(self, **kw):
        return self.inner.make_metrics(**kw)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_checkpoints(synthetic_root, tmp_path, monkeypatch):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="nan", **{"train.epochs": 3}))
    from vislab.core import engine
    steps_per_epoch = {}
    real_fit = engine.Trainer.fit

    def fit(self, model, objective, train_loader, *a, **k):
        steps_per_epoch["n"] = len(train_loader)
        return real_fit(self, model, NanAt(objective, at=len(train_loader) + 3), train_loader, *a, **k)

    monkeypatch.setattr(engine.Trainer, "fit", fit)
    # checkpoints are written after epoch 1; grab their hashes when the NaN fires
    with pytest.raises(NonFiniteLoss) as e:
        fashion.train(cfg, progress=False)
    n = steps_per_epoch["n"]
    assert f"epoch 2, step {n + 3}" in str(e.value)
    ck = tmp_path / "nan" / "checkpoints"
    assert ckpt.read_meta(ck / "last.safetensors")["epoch"] == 1
    assert ckpt.read_meta(ck / "best.safetensors")["epoch"] == 1
    w = load_file(ck / "last.safetensors")
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())
    assert "NonFiniteLoss" in json.loads((tmp_path / "nan" / "FAILED.json").read_text())["error"]


def test_tampered_and_foreign_checkpoints_are_refused(tiny_run, tmp_path):
    run_dir, cfg = tiny_run
    good = run_dir / "checkpoints" / "best.safetensors"
    # 1. flipped bytes in the header
    bad = tmp_path / "bad.safetensors"
    data = bytearray(good.read_bytes())
    data[10:40] = b"\x00" * 30
    bad.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError):
        fashion.load_model(bad)
    # 2. a pickle that would run code if unpickled
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.safetensors"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(ckpt.CheckpointError, match="not a readable vislab checkpoint"):
        fashion.load_model(evil)
    evil_state = tmp_path / "last.state.pt"
    torch.save({"x": Evil()}, evil_state)
    with pytest.raises(ckpt.CheckpointError, match="cannot be loaded safely"):
        ckpt.load_state(evil_state)
    assert not marker.exists()
    # 3. truncated file
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ckpt.CheckpointError):
        fashion.load_model(trunc)
    # 4. a checkpoint of another task set
    meta = ckpt.read_meta(good)
    with pytest.raises(ckpt.CheckpointError, match="trained for tasks"):
        fashion.check_tasks(meta, ["gender", "usage"], good)
    # 5. weights that do not fit the declared model
    w = load_file(good)
    w.pop(next(iter(w)))
    other = tmp_path / "other.safetensors"
    ckpt.save_weights(other, w, {k: v for k, v in meta.items() if k not in ("format", "versions")})
    with pytest.raises(ckpt.CheckpointError, match="does not fit"):
        fashion.load_model(other)


@pytest.mark.slow
def test_ddp_two_cpu_processes(synthetic_root, tmp_path):
    ov = tiny_overrides(synthetic_root, tmp_path, **{"train.epochs": 1})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(CLI + ["fashion", "train", "--name", "ddp", "--accelerator", "cpu", "--devices", "2",
                                "--strategy", "ddp", "--no-progress"] + ov,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    meta = ckpt.read_meta(tmp_path / "ddp" / "checkpoints" / "last.safetensors")
    single = subprocess.run(CLI + ["fashion", "train", "--name", "single", "--no-progress"] + ov,
                            env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    meta1 = ckpt.read_meta(tmp_path / "single" / "checkpoints" / "last.safetensors")
    # two processes split each epoch: half the optimizer steps of one process, same number of images
    assert meta["step"] == pytest.approx(meta1["step"] / 2, abs=1)
    assert "world size 2" in res.stdout or "ddp" in res.stdout.lower() or meta["step"] < meta1["step"]
    assert (tmp_path / "ddp" / "metrics.json").is_file()


def test_compare_same_budget_writes_comparison_report(synthetic_root, tmp_path):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="cmp",
                                           **{"train.epochs": 1, "train.max_steps": 8}))
    out = fashion.compare(cfg, ["test_efficientnet", "test_resnet"], ["baseline", "tuned"], progress=False)
    runs = json.loads((out / "comparison.json").read_text())
    assert len(runs) == 4
    for r in runs.values():
        hist = r["history"]
        assert hist[-1]["step"] == 8  # the same budget for every run
        assert set(r["metrics"]) >= {"average", "gender"}
    for f in ("summary.png", "per_task.png", "ablation_test_efficientnet.png", "ablation_test_resnet.png"):
        assert (out / "figures" / f).is_file()
    html = (out / "report.html").read_text()
    assert "test_resnet / tuned" in html and html.count("data:image/png;base64,") >= 4


@pytest.mark.parametrize("kind,expect", [
    # lr of the 10 epochs, 3 steps each (lr 0.1): step halves every 4 epochs, exponential x0.5 per epoch
    ("step", [0.1] * 4 + [0.05] * 4 + [0.025] * 2),
    ("exponential", [0.1 * 0.5 ** e for e in range(10)]),
])
def test_per_epoch_schedulers(kind, expect):
    from vislab.core.config import TrainConfig
    from vislab.core.engine import build_optimizer, build_scheduler
    cfg = TrainConfig(recipe="cnn-adam", scheduler=kind, lr=0.1, gamma=0.5, step_size=4, epochs=10)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps=30, steps_per_epoch=3)
    seen = []
    for step in range(30):
        if step % 3 == 0:
            seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx(expect)


@pytest.mark.parametrize("steps", [1, 2, 4, 5, 12])
def test_onecycle_survives_runs_of_a_few_steps(steps):
    """A 1-epoch run of a handful of batches: torch's OneCycleLR divides by zero under 5 total steps."""
    from vislab.core.config import TrainConfig
    from vislab.core.engine import build_optimizer, build_scheduler
    cfg = TrainConfig(recipe="cnn-adam", scheduler="onecycle", lr=0.1, epochs=1)
    opt = build_optimizer(torch.nn.Linear(2, 2), cfg)
    sched = build_scheduler(opt, cfg, total_steps=steps, steps_per_epoch=steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < 0.1 and all(0 < lr <= 0.1 + 1e-9 for lr in lrs)
    if steps >= 5:
        assert max(lrs) > 0.08 and lrs[-1] < 0.01 * 0.1  # up to (about) the peak, down to the floor


def test_ema_weights_are_what_validation_and_checkpoints_see(synthetic_root, tmp_path):
    """train.ema_decay: the best/last checkpoints hold the averaged weights (not the raw ones kept for resume),
    and the history's validation loss is that of the saved best checkpoint."""
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="ema",
                                           **{"train.epochs": 2, "train.ema_decay": 0.8}))
    run_dir = fashion.train(cfg, progress=False, report=False)
    state = ckpt.load_state(run_dir / "checkpoints" / "last.state.pt")
    last = load_file(run_dir / "checkpoints" / "last.safetensors")
    assert set(state["ema"]) == set(state["model"]) and set(last) <= set(state["ema"])
    moved = [k for k in last if last[k].is_floating_point() and not torch.equal(state["model"][k], last[k])]
    assert moved and all(torch.equal(last[k], state["ema"][k]) for k in last)
    meta = ckpt.read_meta(run_dir / "checkpoints" / "best.safetensors")
    prepared = fashion.prepare_data(cfg, progress=False)
    m, _ = fashion.evaluate_checkpoint(run_dir / "checkpoints" / "best.safetensors", prepared, prepared.splits["val"])
    best = meta["history"][meta["epoch"] - 1]
    assert m["average"]["loss"] == pytest.approx(best["val_loss"], rel=1e-4)


def test_flip_tta_in_the_fashion_evaluation(tiny_run):
    """train.tta=true: the evaluation averages the logits of each photo and its mirror."""
    from vislab.core.objectives import FlipTTA
    from vislab.core.transforms import BatchTransform
    run_dir, cfg = tiny_run
    path = run_dir / "checkpoints" / "best.safetensors"
    prepared = fashion.prepare_data(cfg, progress=False)
    rows = prepared.splits["test"]
    plain, raw = fashion.evaluate_checkpoint(path, prepared, rows)
    cfg_tta = cfg.model_copy(update={"train": cfg.train.model_copy(update={"tta": True})})
    meta = ckpt.read_meta(path)
    tta_ckpt = run_dir.parent / "tta.safetensors"
    ckpt.save_weights(tta_ckpt, load_file(path), {**meta, "config": cfg_tta.model_dump(mode="json")})
    flipped, raw_t = fashion.evaluate_checkpoint(tta_ckpt, prepared, rows)
    net, _ = fashion.load_model(path)
    x = BatchTransform(net.data_config["mean"], net.data_config["std"])(torch.from_numpy(
        np.asarray(prepared.images[rows[:16]])))
    with torch.no_grad():
        want = FlipTTA(net.eval())(x)
    for t in want:
        np.testing.assert_allclose(raw_t["outputs"][t][:16], want[t].numpy(), atol=1e-4)
    assert any(not np.allclose(raw["outputs"][t], raw_t["outputs"][t]) for t in want)


def test_single_task_objective_accepts_plain_logits_and_flip_tta():
    from vislab.core.objectives import ClassificationObjective, FlipTTA
    obj = ClassificationObjective({"label": 3})
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    loss, parts = obj(logits, y)
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)))
    m = obj.make_metrics(train=True)
    m.update(logits, y, parts)
    assert m.compute()["label"]["accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one tensor"):
        ClassificationObjective({"a": 2, "b": 2})(logits, y)

    class Asym(torch.nn.Module):  # logit = mean of the left half of the image
        def forward(self, x):
            return x[..., : x.shape[-1] // 2].mean(dim=(1, 2, 3))[:, None]
    x = torch.zeros(1, 1, 2, 4)
    x[..., :2] = 1.0
    assert float(Asym()(x)) == 1.0 and float(FlipTTA(Asym())(x)) == pytest.approx(0.5)


def test_monitor_chooses_the_best_checkpoint(synthetic_root, tmp_path):
    """train.monitor: the best checkpoint is the epoch with the highest val_accuracy (mode inferred: max)."""
    from vislab.core.config import TrainConfig
    from vislab.core.engine import Trainer
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="mon", **{"train.epochs": 3,
                                                                                    "train.monitor": "val_accuracy"}))
    run = fashion.train(cfg, progress=False)
    meta = ckpt.read_meta(run / "checkpoints" / "best.safetensors")
    accs = [h["val_accuracy"] for h in meta["history"]]
    assert meta["epoch"] == int(np.argmax(accs)) + 1
    t = Trainer(TrainConfig(recipe="baseline", accelerator="cpu", monitor="val_accuracy"), tmp_path, progress=False)
    assert t._monitor_score({"val_accuracy": 0.8}) < t._monitor_score({"val_accuracy": 0.7})
    assert t._monitor_score({"val_accuracy": float("nan")}) == float("inf")
    t = Trainer(TrainConfig(recipe="baseline", accelerator="cpu", monitor="val_loss"), tmp_path, progress=False)
    assert t._monitor_score({"val_loss": 0.3}) < t._monitor_score({"val_loss": 0.4})
    t = Trainer(TrainConfig(recipe="baseline", accelerator="cpu", monitor="val_auc"), tmp_path, progress=False)
    with pytest.raises(ValueError, match="not a history column"):
        t._monitor_score({"val_loss": 0.3})


def test_new_run_dir_never_reuses_a_folder_with_results(tmp_path):
    """A second study of the same name (splits, cv, compare) gets name-2 instead of overwriting the first's
    results; an empty folder left by nothing is reused."""
    from vislab.core.engine import new_run_dir
    first = new_run_dir(tmp_path, "s-splits")
    assert first == tmp_path / "s-splits" and new_run_dir(tmp_path, "s-splits") == first  # empty: reused
    (first / "splits.json").write_text("{}")
    second = new_run_dir(tmp_path, "s-splits")
    assert second == tmp_path / "s-splits-2"
    (second / "checkpoints").mkdir()
    assert new_run_dir(tmp_path, "s-splits") == tmp_path / "s-splits-3"
