"""How much colour and season signal the catalog's photos carry, against what the CSV's other columns carry:
the study behind the fashion lab's "Why baseColour and season stay behind" section.

    python benchmarks/label_signal.py runs/h128-12ep --tasks baseColour,season

On the run's own split (its checkpoint's data config), for each task:
1. identical photos: test images whose decoded pixels equal a training image's, and how often the two carry
   the same label (no image model can tell such a pair apart);
2. the majority class, and classifiers that never see a pixel (scikit-learn logistic regression, fit on the
   training split): the other catalog fields (gender, articleType, usage), the same plus the catalog year,
   and the product name's words (TF-IDF);
3. the checkpoint alone (optionally with flip TTA), and the checkpoint's logits stacked with the catalog
   fields and year (a logistic regression fit on the validation split, scored on the test split once).
Accuracy on the test split with a 95% bootstrap interval (1,000 resamples).
"""
from __future__ import annotations

import argparse
import hashlib
from collections import Counter, defaultdict

import numpy as np


def _row(name: str, y: np.ndarray, pred: np.ndarray) -> str:
    from vislab.core.metrics import bootstrap_intervals
    lo, hi = bootstrap_intervals({"task": (y, pred, int(max(y.max(), pred.max())) + 1)})["task"]["accuracy"]
    return f"| {name} | {100 * (y == pred).mean():.1f} [{100 * lo:.1f}, {100 * hi:.1f}] |"


def _one_hot(df, cols):
    from sklearn.preprocessing import OneHotEncoder
    return OneHotEncoder(handle_unknown="ignore").fit(df[cols].astype(str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="run folder or checkpoint")
    ap.add_argument("--tasks", default="baseColour,season")
    ap.add_argument("--tta", action="store_true", help="score the checkpoint with flip TTA")
    a = ap.parse_args()
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from vislab.core.checkpoint import read_meta, resolve
    from vislab.labs.fashion import lab
    from vislab.labs.fashion.config import FashionRunConfig

    path = resolve(a.run)[0]
    cfg = FashionRunConfig.model_validate(read_meta(path)["config"])
    prepared = lab.prepare_data(cfg, progress=False)
    df, tr, va, te = prepared.df, *(prepared.splits[s] for s in ("train", "val", "test"))
    names = list(prepared.encoders)
    _, raw_val = lab.evaluate_checkpoint(path, prepared, va, tta=a.tta)
    _, raw_test = lab.evaluate_checkpoint(path, prepared, te, tta=a.tta)

    digest = [hashlib.blake2b(np.ascontiguousarray(prepared.images[i]).tobytes(), digest_size=16).digest()
              for i in range(len(df))]
    train_by_digest = defaultdict(list)
    for i in tr:
        train_by_digest[digest[i]].append(i)
    dup = [i for i in te if digest[i] in train_by_digest]
    print(f"{cfg.data.root}: {len(tr)} train / {len(va)} val / {len(te)} test rows, images {cfg.data.image_size}")
    print(f"test photos identical to a training photo: {len(dup)} ({100 * len(dup) / len(te):.1f}%)")

    ctx = ["gender", "articleType", "usage"]
    with_year = ctx + ["year"]
    for task in a.tasks.split(","):
        j = names.index(task)
        y = prepared.targets[:, j]
        print(f"\n### {task} ({len(prepared.encoders[task])} classes), test accuracy % [95%]\n")
        print("| predictor | accuracy |\n|---|---|")
        if dup:
            twin = np.array([Counter(y[train_by_digest[digest[i]]]).most_common(1)[0][0] for i in dup])
            print(_row(f"identical training photo's label ({len(dup)} test rows only)", y[dup], twin))
        majority = Counter(y[tr]).most_common(1)[0][0]
        print(_row("majority class", y[te], np.full(len(te), majority)))
        for label, cols in ((", ".join(ctx) + " (no image)", ctx), (", ".join(with_year) + " (no image)", with_year)):
            enc = _one_hot(df.iloc[tr], cols)  # the last one (with year) feeds the stacked row below
            clf = LogisticRegression(max_iter=2000, C=1.0).fit(enc.transform(df.iloc[tr][cols].astype(str)), y[tr])
            print(_row(label, y[te], clf.predict(enc.transform(df.iloc[te][cols].astype(str)))))
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2).fit(df.iloc[tr]["productDisplayName"].fillna(""))
        clf = LogisticRegression(max_iter=2000, C=10.0).fit(vec.transform(df.iloc[tr]["productDisplayName"].fillna("")),
                                                            y[tr])
        print(_row("product name words, TF-IDF (no image)", y[te],
                   clf.predict(vec.transform(df.iloc[te]["productDisplayName"].fillna("")))))
        cnn_val, cnn_test = raw_val["outputs"][task], raw_test["outputs"][task]
        print(_row(f"the checkpoint{' + flip TTA' if a.tta else ''} (image only)", y[te], cnn_test.argmax(1)))
        x_val = sp.hstack([sp.csr_matrix(cnn_val), enc.transform(df.iloc[va][with_year].astype(str))]).tocsr()
        x_test = sp.hstack([sp.csr_matrix(cnn_test), enc.transform(df.iloc[te][with_year].astype(str))]).tocsr()
        stack = LogisticRegression(max_iter=4000, C=1.0).fit(x_val, y[va])
        print(_row("the checkpoint's logits + catalog fields + year (stacked on val)", y[te], stack.predict(x_test)))


if __name__ == "__main__":
    main()
