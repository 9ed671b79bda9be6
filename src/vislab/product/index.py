"""Similar-product search: a catalog index of image embeddings, and brute-force cosine queries on it.

    index = build_index(predictor, resolve_inputs(["catalog/"]), pca=256)   # batched, workers decode
    index.save("catalog.index")
    index = CatalogIndex.load("catalog.index")
    hits = index.search(index.embed(predictor, ["query.jpg"]), k=10)      # [[Hit(rank, id, path, score, labels)]]

The embedding is the model's pooled backbone features (what its heads read), optionally PCA-reduced (fitted
on the catalog itself), then L2-normalised, so the score is the cosine similarity. The index is one
safetensors file: the embeddings (float16, halving the file; scores are computed in float32), the PCA mean and
components, and in its metadata the ids, paths, predicted labels and which model made it.

Brute force is one matrix product: 40,000 x 1,280 float32 is 205 MB and one query costs 51 M multiply-adds
(milliseconds on one core); time and memory grow linearly with the catalog. Past a few million items, or at
hundreds of queries per second, an approximate index (FAISS, hnswlib) is the tool to reach for."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vislab.core.errors import CheckpointError, DataError, UsageError

if TYPE_CHECKING:
    import torch

INDEX_FORMAT = "vislab-index-1"


@dataclass
class Hit:
    rank: int
    row: int
    """The item's row in the index (the service serves its image at /v1/catalog/{row}/image)."""
    id: str
    path: str
    score: float
    labels: dict[str, str]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CatalogIndex:
    embeddings: torch.Tensor
    """(N, D) float32, L2-normalised rows."""
    ids: list[str]
    paths: list[str]
    labels: dict[str, list[str]]
    """The model's predicted label per task, per item."""
    meta: dict = field(default_factory=dict)
    """model (checkpoint, backbone, image_size, features), created, skipped (unreadable images), pca."""
    mean: torch.Tensor | None = None
    components: torch.Tensor | None = None
    """PCA: (D_raw,) and (D_raw, D); None without PCA."""

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ queries

    def project(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw backbone features (Q, D_raw) -> the index's space (PCA, then L2 normalisation)."""
        import torch
        f = torch.as_tensor(np.asarray(features, dtype=np.float32))
        want = self.mean.numel() if self.mean is not None else self.embeddings.shape[1]
        if f.ndim != 2 or f.shape[1] != want:
            raise UsageError(f"query features have shape {tuple(f.shape)}; this index takes (Q, {want}) "
                             "(was it built with another model?)")
        if self.mean is not None:
            f = (f - self.mean) @ self.components
        return torch.nn.functional.normalize(f, dim=1)

    def embed(self, predictor, images) -> torch.Tensor:
        """Query embeddings of image files (or PIL images / arrays) with the predictor that built the index."""
        feats, _ = predictor.embed_arrays(predictor.preprocess(images))
        return self.project(feats)

    def search(self, queries: torch.Tensor, k: int = 10, exclude: list[set[int]] | None = None) -> list[list[Hit]]:
        """The k most similar items of each query row (cosine, best first); `exclude` drops given rows per query
        (the query itself when it is in the catalog)."""
        if k < 1:
            raise UsageError(f"-k must be at least 1, got {k}")
        scores = (queries.float() @ self.embeddings.T).clamp_(-1.0, 1.0)  # unit vectors: float rounding gives 1 + 1e-7
        if exclude:
            for q, rows in enumerate(exclude):
                if rows:
                    scores[q, list(rows)] = -float("inf")
        k = min(k, len(self))
        top = scores.topk(k, dim=1)
        return [[Hit(r + 1, j, self.ids[j], self.paths[j], float(s), {t: v[j] for t, v in self.labels.items()})
                 for r, (s, j) in enumerate(zip(row_s.tolist(), row_j.tolist()))]
                for row_s, row_j in zip(top.values, top.indices)]

    # ------------------------------------------------------------------ file

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file
        path = Path(path)
        tensors = {"embeddings": self.embeddings.half().contiguous()}
        if self.mean is not None:
            tensors |= {"pca_mean": self.mean.contiguous(), "pca_components": self.components.contiguous()}
        info = {"format": INDEX_FORMAT, "ids": self.ids, "paths": self.paths, "labels": self.labels, **self.meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors, str(tmp), metadata={"vislab_index": json.dumps(info)})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CatalogIndex:
        info, tensors = read_index(path, tensors=True)
        import torch
        # unit rows again after the float16 rounding, so that a cosine never exceeds 1 (the self-match was ~1 + 2e-5)
        emb = torch.nn.functional.normalize(tensors["embeddings"].float(), dim=1)
        meta = {k: v for k, v in info.items() if k not in ("format", "ids", "paths", "labels")}
        return cls(emb, info["ids"], info["paths"], info["labels"], meta, tensors.get("pca_mean"),
                   tensors.get("pca_components"))


def read_index(path: str | Path, tensors: bool = False):
    """An index file's metadata (and its tensors); one clear error for anything that is not a vislab index."""
    from vislab.core.checkpoint import read_header
    path = Path(path)  # metadata alone reads without torch (commands check an index before loading a model)
    if not path.is_file():
        raise DataError(f"index {path} does not exist (build one with `vislab fashion index`)")
    info, data = read_header(path, "vislab_index", INDEX_FORMAT, "index", tensors)
    if tensors:
        n, emb = len(info["ids"]), data.get("embeddings")
        if emb is None or emb.ndim != 2 or emb.shape[0] != n or len(info["paths"]) != n:
            raise CheckpointError(f"{path}: the embeddings do not match the {n} ids (tampered with?)")
        return info, data
    return info


# ---------------------------------------------------------------------- building


def embed_items(predictor, batch: list, inputs) -> list[tuple]:
    """(input, features or None, labels or None, error) for one decoded batch, in input order."""
    ok = [(i, a) for i, a, e in batch if a is not None]
    if ok:
        feats, preds = predictor.embed_arrays(np.stack([a for _, a in ok]))
        got = {i: (feats[n], preds[n].labels) for n, (i, _) in enumerate(ok)}
    else:
        got = {}
    return [(inputs[i], *got.get(i, (None, None)), e) for i, a, e in batch]


def model_info(path: str | Path, meta: dict, tta: bool = False) -> dict:
    """What an index records of the model that built it (so that queries use the same one and embed the same
    way: `tta`, the mean features of the photo and its mirror)."""
    return {"checkpoint": str(Path(path).resolve()), "backbone": meta.get("backbone"),
            "image_size": list(meta["image_size"]), "tta": bool(tta),
            "features": "pooled backbone features" + (" (mean over the photo and its mirror)" if tta else "")}


def fit_pca(features: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, components (D_raw, dim)) of the centred features (torch's SVD)."""
    import torch
    if not 1 <= dim <= min(features.shape):
        raise UsageError(f"--pca {dim}: must lie between 1 and min(items, features) = {min(features.shape)}")
    mean = features.mean(0)
    _, _, v = torch.linalg.svd(features - mean, full_matrices=False)
    return mean, v[:dim].T.contiguous()


def build_index(predictor, inputs, pca: int | None = None, batch_size: int = 64, workers: int | None = None,
                progress: bool = True, console=None, model_info: dict | None = None) -> CatalogIndex:
    """Embed every input (workers decode and, on a CPU, embed whole batches); unreadable images are counted
    and left out."""
    import torch

    from vislab.product.tag import _progress, batches, default_workers
    workers = default_workers() if workers is None else workers
    feats, kept, labels, skipped = [], [], {t: [] for t in predictor.tasks}, []
    with _progress(progress, console) as bar:
        task = bar.add_task("indexing", total=len(inputs))
        for rows in batches(inputs, predictor, batch_size, workers, fn=embed_items):
            for item, f, lab, e in rows:
                if f is None:
                    skipped.append({"path": item.path, "error": e})
                    continue
                feats.append(f)
                kept.append(item)
                for t in labels:
                    labels[t].append(lab[t])
            bar.advance(task, len(rows))
    if not kept:
        raise DataError(f"none of the {len(inputs)} inputs could be read: nothing to index")
    raw = torch.from_numpy(np.stack(feats)).float()
    mean = comps = None
    if pca:
        mean, comps = fit_pca(raw, pca)
        raw = (raw - mean) @ comps
    meta = {"model": model_info or {}, "created": dt.datetime.now().isoformat(timespec="seconds"),
            "skipped": skipped, "pca": pca, "dim": int(raw.shape[1])}
    return CatalogIndex(torch.nn.functional.normalize(raw, dim=1), [x.id for x in kept], [x.path for x in kept],
                        labels, meta, mean, comps)
