"""Similar-product search, quality and speed, in one run: the checkpoint's test split queries its training
split (the gallery). Relevant means the same articleType, and separately the same articleType and
baseColour. Rows: the fine-tuned model's pooled features, the same backbone with its ImageNet weights (no
fine-tuning), and each PCA-reduced to --pca dimensions (fitted on the gallery). Then the latency of one query
against an index of --items items (brute-force cosine in torch, as `vislab fashion similar` runs it).

    python benchmarks/bench_similar.py --checkpoint runs/fashion [--pca 256] [--items 40000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def features(predictor, images: np.ndarray, batch: int = 256) -> np.ndarray:
    out = [predictor.embed_arrays(images[i:i + batch])[0] for i in range(0, len(images), batch)]
    return np.concatenate(out)


def retrieval(q, g, q_labels: np.ndarray, g_labels: np.ndarray,
              k: int = 10) -> dict[str, float]:
    """precision@1, precision@k and mAP@k of L2-normalised queries against a gallery; labels (N, L) int, a row
    relevant when every column matches (any -1 never matches)."""
    top = []
    for i in range(0, len(q), 1024):
        top.append((q[i:i + 1024] @ g.T).topk(k, dim=1).indices.numpy())
    top = np.concatenate(top)
    rel = np.all(g_labels[top] == q_labels[:, None, :], axis=2) & np.all(q_labels[:, None, :] >= 0, axis=2)
    keys = [tuple(r) for r in g_labels.tolist()]
    counts: dict = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    n_rel = np.array([counts.get(tuple(r), 0) for r in q_labels.tolist()])
    ok = n_rel > 0  # queries with at least one relevant gallery item
    prec_at = np.cumsum(rel, axis=1) / np.arange(1, k + 1)
    ap = (prec_at * rel).sum(1)[ok] / np.minimum(k, n_rel[ok])
    return {"p@1": float(rel[ok, 0].mean()), f"p@{k}": float(rel[ok].mean()), f"map@{k}": float(ap.mean()),
            "queries": int(ok.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--pca", type=int, default=256)
    ap.add_argument("--items", type=int, default=40_000, help="Index size the query latency is measured at")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from vislab.core.checkpoint import read_meta, resolve
    from vislab.core.models import create_backbone
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.index import fit_pca
    from vislab.product.parity import split_data
    ck = resolve(a.checkpoint)[0]
    meta = read_meta(ck)
    tasks = list(meta["encoders"])
    cols = [tasks.index("articleType")], [tasks.index("articleType"), tasks.index("baseColour")]
    t0 = time.perf_counter()
    gx, gy = split_data(meta, "train")
    qx, qy = split_data(meta, "test")
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
          f"{torch.__version__}; {meta['backbone']} at {meta['image_size'][0]}x{meta['image_size'][1]}; gallery "
          f"{len(gx)} training images, {len(qx)} test queries (decoded in {time.perf_counter() - t0:.0f} s)")
    tuned = Predictor.load(ck)
    imagenet = Predictor.load(ck)
    imagenet.net.backbone = create_backbone(meta["backbone"], pretrained=True, num_classes=0).eval().to(
        memory_format=torch.channels_last)
    rows = []
    for name, p in (("fine-tuned", tuned), ("ImageNet (no fine-tuning)", imagenet)):
        t = time.perf_counter()
        g, q = torch.from_numpy(features(p, gx)), torch.from_numpy(features(p, qx))
        secs = time.perf_counter() - t
        for dims in (None, a.pca):
            gg, qq = g, q
            if dims:
                mean, comps = fit_pca(g, dims)
                gg, qq = (g - mean) @ comps, (q - mean) @ comps
            gg, qq = torch.nn.functional.normalize(gg, dim=1), torch.nn.functional.normalize(qq, dim=1)
            row = {"features": name, "dim": int(gg.shape[1]), "embed_seconds": secs}
            for label, c in zip(("articleType", "articleType+baseColour"), cols):
                row[label] = retrieval(qq, gg, qy[:, c], gy[:, c])
            rows.append(row)
    print("\n| features | dim | relevant = | P@1 | P@10 | mAP@10 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for label in ("articleType", "articleType+baseColour"):
            m = r[label]
            print(f"| {r['features']} | {r['dim']} | {label} | {m['p@1']:.3f} | {m['p@10']:.3f} | {m['map@10']:.3f} |")
    # latency at --items: the real gallery's embeddings, repeated to that size
    g = torch.nn.functional.normalize(torch.from_numpy(features(tuned, gx[:2000])), dim=1)
    big = g.repeat(a.items // len(g) + 1, 1)[:a.items].contiguous()
    pick = torch.randperm(a.items, generator=torch.Generator().manual_seed(0))[:a.queries]
    lat = {}
    small = torch.nn.functional.normalize(big[:, :a.pca], dim=1).contiguous()  # what a PCA index costs
    for dims, mat in ((int(big.shape[1]), big), (a.pca, small)):
        times, qs = [], mat[pick]
        for i in range(a.queries):
            t = time.perf_counter()
            (qs[i:i + 1] @ mat.T).topk(10, dim=1)
            times.append((time.perf_counter() - t) * 1000)
        lat[dims] = (np.percentile(times, 50), np.percentile(times, 95))
    x1 = qx[:1]
    for _ in range(5):
        tuned.embed_arrays(x1)
    t = time.perf_counter()
    for _ in range(50):
        tuned.embed_arrays(x1)
    embed_ms = (time.perf_counter() - t) * 20
    print(f"\nquery latency at {a.items:,} items (float32, {torch.get_num_threads()} threads): "
          + "; ".join(f"{d}-d p50 {v[0]:.2f} ms, p95 {v[1]:.2f} ms" for d, v in lat.items())
          + f"; embedding the query photo (decoded) {embed_ms:.1f} ms; index memory {big.numel() * 4 / 2**20:.0f} MB")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "settings": vars(a) | {"json": str(a.json)},
                                      "rows": rows, "latency_ms": {str(k): v for k, v in lat.items()},
                                      "embed_ms": embed_ms}, indent=2, default=str))


if __name__ == "__main__":
    main()
