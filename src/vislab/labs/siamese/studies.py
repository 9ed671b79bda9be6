"""Siamese studies beyond one run: the Optuna search (resumable, averaged over person splits), the margin
study and repeated person splits with the untrained baseline."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core import checkpoint as ckpt
from vislab.core.engine import new_run_dir
from vislab.core.report import Section, Table, hardware, rich_console, to_yaml, write_report
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.data import FaceData, load_data, on_split
from vislab.labs.siamese.lab import evaluate_pretrained, evaluate_run, load_model, split_embeddings, train
from vislab.labs.siamese.metrics import pair_distances, verification_metrics
from vislab.labs.siamese.objective import SiameseObjective
from vislab.labs.siamese.plots import distance_distributions, verification_roc


def compare_margins(cfg: SiameseRunConfig, margins=(1.0, 2.0), progress: bool = True) -> Path:
    """Train the same configuration at each margin; one report with AUC/EER per margin, the test
    distance distributions side by side and the ROC curves overlaid."""
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-margins")
    data = load_data(cfg, progress=progress)
    results, dists, rocs = {}, {}, {}
    for m in margins:
        c = cfg.model_copy(update={"name": f"margin-{m:g}", "out_dir": str(out),
                                   "loss": cfg.loss.model_copy(update={"margin": float(m)})})
        run = train(c, progress=progress, data=data)
        r = json.loads((run / "metrics.json").read_text())
        model, meta, _ = load_model(run / "checkpoints" / "best.safetensors")
        et, lt, _ = split_embeddings(model, data, meta["mean"], meta["std"], "test")
        d, s = pair_distances(et, lt, meta.get("distance", "euclidean"))
        name = f"margin {m:g}"
        results[name], dists[name] = r, (d[s == 1], d[s == 0])
        v = verification_metrics(d, s)
        rocs[name] = v
        r["same_mean"], r["different_mean"] = float(d[s == 1].mean()), float(d[s == 0].mean())
    distance_distributions(dists, out / "plots" / "distances.png", title="Test pair distances by margin")
    verification_roc(rocs, out / "plots" / "roc.png")
    table = Table(["margin", "AUC", "EER %", "acc @ val thr", "P@1", "MAP@R", "mean d same", "mean d different"],
                  [[k, r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"], r["map_at_r"], r["same_mean"],
                    r["different_mean"]] for k, r in results.items()])
    (out / "margins.json").write_text(json.dumps(results, indent=2))
    write_report(out, "Siamese lab: the effect of the margin", [
        Section("Margins", SiameseObjective.from_config(cfg).describe(), [table],
                [out / "plots" / "distances.png", out / "plots" / "roc.png"])], {"hardware": hardware()})
    return out


def _loss_choice(choice: str) -> dict:
    """'contrastive:hadsell' -> {loss, form}; 'triplet:semi-hard' -> {loss, miner}."""
    kind, _, opt = choice.partition(":")
    if kind == "contrastive":
        return {"loss": "contrastive", "form": opt or "hadsell"}
    if kind == "triplet":
        return {"loss": "triplet", "miner": opt or "none"}
    raise ValueError(f"search.loss entry {choice!r}: use contrastive:<original|hadsell> or "
                     "triplet:<none|batch-hard|semi-hard>")


def suggest(trial, cfg: SiameseRunConfig) -> dict[str, Any]:
    """One point of the search space (search.* ranges and choices)."""
    sc = cfg.search
    return {"lr": trial.suggest_float("lr", *sc.lr, log=True),
            "margin": trial.suggest_float("margin", *sc.margin),
            "step_size": trial.suggest_categorical("step_size", list(sc.step_size)),
            "gamma": trial.suggest_float("gamma", *sc.gamma),
            "epochs": trial.suggest_categorical("epochs", list(sc.epochs)),
            "embedding_dim": trial.suggest_categorical("embedding_dim", list(sc.embedding_dim)),
            "loss": trial.suggest_categorical("loss", list(sc.loss)),
            **({"backbone_lr_mult": trial.suggest_categorical("backbone_lr_mult", list(sc.backbone_lr_mult))}
               if len(sc.backbone_lr_mult) > 1 else {})}


def with_params(cfg: SiameseRunConfig, p: dict[str, Any], **top) -> SiameseRunConfig:
    """cfg with a search point applied (train.lr/step_size/gamma/epochs, model.embedding_dim, loss.*)."""
    raw = cfg.model_dump(mode="json")
    raw["train"].update({k: p[k] for k in ("lr", "step_size", "gamma", "epochs", "backbone_lr_mult") if k in p})
    fixed = cfg.search.backbone_lr_mult
    if "backbone_lr_mult" not in p and len(fixed) == 1:  # one value: every trial uses it
        raw["train"]["backbone_lr_mult"] = fixed[0]
    if "embedding_dim" in p:
        raw["model"]["embedding_dim"] = int(p["embedding_dim"])
    if "margin" in p:
        raw["loss"]["margin"] = float(p["margin"])
    if "loss" in p:
        raw["loss"].update(_loss_choice(p["loss"]))
    raw.update(top)
    return SiameseRunConfig.model_validate(raw)


def _best_row(history: list[dict], key: str) -> dict:
    mode_max = "loss" not in key
    rows = [h for h in history if np.isfinite(float(h.get(key, np.nan)))]
    if not rows:
        return {}
    return (max if mode_max else min)(rows, key=lambda h: float(h[key]))


def search(cfg: SiameseRunConfig, trials: int | None = None, sampler: str | None = None, storage: str | None = None,
           progress: bool = False, console=None) -> Path:
    """Optuna search; every trial is a full training run in <out_dir>/<name>-search/trials/. The study lives
    in an SQLite file there (or search.storage), so running the same command again resumes it: finished
    trials are kept, a trial killed mid-run is marked failed and its parameters are tried again.
    Writes trials.csv, best.json (best parameters) and report.html; with search.retrain the best
    parameters are trained once more into <name>-search/best/ (else the best trial's run is kept)."""
    import optuna
    from optuna.trial import TrialState
    console = console or rich_console()
    sc = cfg.search
    trials = sc.trials if trials is None else trials
    kind = sampler or sc.sampler
    out = Path(cfg.out_dir) / f"{cfg.name}-search"
    out.mkdir(parents=True, exist_ok=True)
    url = storage or sc.storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
    direction = "maximize" if sc.objective == "val_auc" else "minimize"
    smp = (optuna.samplers.RandomSampler(seed=cfg.train.seed) if kind == "random"
           else optuna.samplers.TPESampler(seed=cfg.train.seed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=cfg.name, storage=url, load_if_exists=True, direction=direction, sampler=smp)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # killed mid-trial: run its point again
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        console.print(f"trial {t.number} was interrupted; its parameters are queued again")
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if sc.splits:  # the first split is the one reported (best trial's run, per-loss table, retrain)
        cfg = on_split(cfg, sc.splits[0])
    data = load_data(cfg, progress=progress)
    console.print(f"search: {trials} trials ({done} done), {kind} sampler, objective {sc.objective}; storage {url}")

    seeds = list(sc.splits) or [cfg.data.seed]
    datas = {seeds[0]: data}

    def split_data(seed: int) -> FaceData:
        if seed not in datas:
            datas[seed] = load_data(on_split(cfg, seed), progress=False)
        return datas[seed]

    def objective(trial):
        p = suggest(trial, cfg)
        t0 = time.time()
        values, bests, runs = [], [], []
        for seed in seeds:  # one run per person split; the trial's value is their mean
            run = out / "trials" / f"trial-{trial.number:03d}" / (f"split-{seed}" if len(seeds) > 1 else "")
            c = with_params(cfg, p, name=run.name, out_dir=str(run.parent))
            c = on_split(c, seed)
            train(c, progress=progress, report=False, data=split_data(seed), run_dir=run)
            hist = ckpt.read_meta(run / "checkpoints" / "last.safetensors").get("history", [])
            best = _best_row(hist, sc.objective)
            values.append(float(best[sc.objective]))
            bests.append(best)
            runs.append(run)
        trial.set_user_attr("run", str(runs[0]))
        trial.set_user_attr("seconds", round(time.time() - t0, 1))
        for k in ("val_auc", "val_eer", "val_loss", "epoch"):
            if all(k in b for b in bests):
                trial.set_user_attr(k, float(np.mean([float(b[k]) for b in bests])))
        if len(seeds) > 1:
            trial.set_user_attr("per_split", [round(v, 5) for v in values])
        value = float(np.mean(values))
        console.print(f"trial {trial.number}: {p} -> {sc.objective} {value:.4f}"
                      + (f" (splits {seeds}: {[round(v, 4) for v in values]})" if len(seeds) > 1 else ""))
        return value

    from vislab.core.engine import NonFiniteLoss
    study.optimize(objective, n_trials=max(trials - done, 0), catch=(NonFiniteLoss,))
    return write_search_report(study, cfg, out, data, progress, console)


def _trial_order(value: float | None, maximize: bool) -> tuple[bool, float]:
    """Sort key of a search trial: best value first, failed/pruned trials (no value) last; 0 is a value."""
    if value is None:
        return (True, 0.0)
    return (False, -value if maximize else value)


def write_search_report(study, cfg: SiameseRunConfig, out: Path, data: FaceData, progress: bool, console) -> Path:
    import csv

    from optuna.trial import TrialState
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name, "value": t.value, **t.params,
                     **{k: v for k, v in t.user_attrs.items() if k != "run"}})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"no trial of the search in {out} completed")
    best = study.best_trial
    best_run = Path(best.user_attrs["run"])
    if cfg.search.retrain:
        c = with_params(cfg, best.params, name="best", out_dir=str(out))
        best_run = train(c, progress=progress, data=data, run_dir=out / "best")
    elif not (best_run / "metrics.json").is_file():
        evaluate_run(best_run, data, console=console)
    (out / "best.json").write_text(json.dumps({"trial": best.number, "value": best.value,
                                               "objective": cfg.search.objective, "params": best.params,
                                               "run": str(best_run),
                                               "config": with_params(cfg, best.params).model_dump(mode="json")},
                                              indent=2))
    (out / "best.yaml").write_text(to_yaml(with_params(cfg, best.params).model_dump(mode="json")))
    cols = ["trial", "state", "value", "loss", "lr", "margin", "step_size", "gamma", "epochs", "embedding_dim",
            "val_eer", "seconds"]
    table = Table(cols, [[r.get(c, "") if r.get(c) is not None else "" for c in cols] for r in
                         sorted(rows, key=lambda r: _trial_order(r["value"], study.direction.name == "MAXIMIZE"))])
    test = json.loads((best_run / "metrics.json").read_text())
    per_loss = best_per_loss(study, data, console)
    (out / "best_per_loss.json").write_text(json.dumps(per_loss, indent=2))
    loss_table = Table(["loss", "trial", "val AUC", "test AUC", "test EER %", "acc @ val threshold", "precision@1",
                        "MAP@R", "lr", "margin", "epochs", "embedding_dim", "step_size", "gamma"],
                       [[k, r["trial"], r["val_auc"], r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"],
                         r["map_at_r"], r["params"]["lr"], r["params"]["margin"], r["params"]["epochs"],
                         r["params"]["embedding_dim"], r["params"]["step_size"], r["params"]["gamma"]]
                        for k, r in per_loss.items()])
    write_report(out, "Siamese lab: hyperparameter search", [
        Section("Trials", f"{len(complete)} completed of {len(study.trials)}; objective {cfg.search.objective} "
                f"({study.direction.name.lower()}); best trial {best.number}: {best.params}", [table]),
        Section("Best parameters on the test people", f"run {best_run}", [Table(
            ["AUC", "EER %", "accuracy @ val threshold", "precision@1", "MAP@R"],
            [[test["auc"], 100 * test["eer"], test["accuracy"], test["precision_at_1"], test["map_at_r"]]])]),
        Section("Best trial of each loss, on the test people", "Chosen by the search objective on validation; "
                "test numbers are reported, never used to choose.", [loss_table]),
    ], {"hardware": hardware()})
    console.print(f"best trial {best.number}: {cfg.search.objective} {best.value:.4f} {best.params}\n"
                  f"test: AUC {test['auc']:.4f}, EER {100 * test['eer']:.2f}%; search folder {out}")
    return out


def best_per_loss(study, data: FaceData, console=None) -> dict[str, dict]:
    """For each loss tried, its best completed trial (by the search objective) evaluated on the test people."""
    from optuna.trial import TrialState
    sign = 1 if study.direction.name == "MAXIMIZE" else -1
    best: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        k = t.params.get("loss", "?")
        if k not in best or sign * t.value > sign * best[k].value:
            best[k] = t
    out = {}
    for k, t in sorted(best.items()):
        run = Path(t.user_attrs["run"])
        m = (json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file()
             else evaluate_run(run, data, console=console))
        out[k] = {"trial": t.number, "value": t.value, "params": t.params, "run": str(run),
                  **{x: m[x] for x in ("auc", "eer", "accuracy", "balanced_accuracy", "precision_at_1", "map_at_r",
                                       "val_auc", "val_eer", "threshold", "train_seconds")}}
    return out


def repeat_splits(cfg: SiameseRunConfig, seeds=(42, 1, 2, 3, 4), baseline: bool = True, progress: bool = False,
                  console=None) -> Path:
    """Train and evaluate `cfg` on several person splits (data.seed), with the untrained pretrained
    features on the same splits beside it. A handful of test people makes one split's EER coarse
    (4 people: 180 same-person pairs, so one pair is 0.56 points of EER); the mean and spread over
    splits say more. Writes splits.json, splits.csv and report.html."""
    console = console or rich_console()
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-splits")
    keys = ("auc", "eer", "accuracy", "balanced_accuracy", "precision_at_1", "map_at_r", "val_auc", "val_eer")
    rows: dict[str, list[dict]] = {"trained": [], "pretrained, no training": []}
    for seed in seeds:
        c = on_split(cfg, int(seed)).model_copy(update={"name": f"seed-{seed}", "out_dir": str(out)})
        data = load_data(c, progress=progress)
        run = train(c, progress=progress, data=data)
        m = json.loads((run / "metrics.json").read_text())
        rows["trained"].append({"seed": seed, "test_people": m["split"]["test"]["people"], **{k: m[k] for k in keys},
                                "train_seconds": m["train_seconds"]})
        if baseline:
            b = evaluate_pretrained(c, out / f"seed-{seed}-pretrained", progress=False, data=data)
            rows["pretrained, no training"].append({"seed": seed, **{k: b[k] for k in keys}})
    summary = {name: {k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs], ddof=1))
                          if len(rs) > 1 else 0.0} for k in keys} for name, rs in rows.items() if rs}
    (out / "splits.json").write_text(json.dumps({"seeds": list(seeds),
                                                 "loss": SiameseObjective.from_config(cfg).describe(),
                                                 "runs": rows, "summary": summary}, indent=2))
    import csv
    with open(out / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", *keys])
        for name, rs in rows.items():
            for r in rs:
                w.writerow([name, r["seed"], *(r[k] for k in keys)])
    fmt = lambda s, k, scale=1.0: f"{scale * s[k]['mean']:.4f} ± {scale * s[k]['std']:.4f}"  # noqa: E731
    table = Table(["model", "test AUC", "test EER %", "acc @ val threshold", "precision@1", "MAP@R"],
                  [[name, fmt(s, "auc"), fmt(s, "eer", 100), fmt(s, "accuracy"), fmt(s, "precision_at_1"),
                    fmt(s, "map_at_r")] for name, s in summary.items()])
    per = Table(["model", "split seed", "test AUC", "test EER %", "acc @ val threshold", "precision@1", "MAP@R"],
                [[name, r["seed"], r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"], r["map_at_r"]]
                 for name, rs in rows.items() for r in rs])
    write_report(out, "Siamese lab: repeated person splits", [
        Section("Mean ± standard deviation over person splits", f"seeds {list(seeds)}; "
                f"{SiameseObjective.from_config(cfg).describe()}", [table]),
        Section("Every split", "", [per])], {"hardware": hardware()})
    for name, s in summary.items():
        console.print(f"{name}: test AUC {fmt(s, 'auc')}, EER % {fmt(s, 'eer', 100)} over {len(seeds)} splits")
    return out
