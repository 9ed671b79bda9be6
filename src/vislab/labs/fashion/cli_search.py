"""`vislab fashion index | similar`: similar-product search (`vislab.product.index`); cli.py mounts them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vislab.core.cli import ProgressOpt, choice, console, err, fail, friendly
from vislab.core.clihelp import documented
from vislab.labs.fashion.cli_types import (
    TTA_DEFAULT,
    BackendOpt,
    CatalogColOpt,
    CatalogDirOpt,
    CatalogExtOpt,
    InputsArg,
    ModelArg,
    OverwriteOpt,
    TtaOpt,
)


@friendly
@documented(None, None, "vislab fashion index runs/fashion photos/ --out catalog.index",
            "vislab fashion index runs/fashion catalog.csv --image-col id --image-dir images --pca 256",
            none={"image_dir": "the CSV's folder", "image_col": "image", "pca": "no reduction",
                  "workers": "one per CPU core", "tta": TTA_DEFAULT})
def index_cmd(checkpoint: ModelArg,
              inputs: InputsArg,
              out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The index file to write.")
                             ] = Path("catalog.index"),
              pca: Annotated[Optional[int], typer.Option(
                  min=1, metavar="DIM", help="Reduce the embeddings to DIM dimensions (PCA on the catalog).")] = None,
              image_col: CatalogColOpt = None,
              image_dir: CatalogDirOpt = None,
              image_ext: CatalogExtOpt = ".jpg",
              batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 64,
              workers: Annotated[Optional[int], typer.Option(
                  min=0, help="Processes that decode and embed (0: this process).")] = None,
              tta: TtaOpt = None,
              backend: BackendOpt = None,
              overwrite: OverwriteOpt = False,
              progress: ProgressOpt = True):
    """Embed every catalog image (the backbone's pooled features, L2-normalised) into one index file, with
    the ids, paths and predicted labels. With --tta the features are the mean over the photo and its mirror, and
    queries (`similar`, `serve --index`) are embedded the same way."""
    from vislab.product.inputs import resolve_inputs
    if backend is not None:
        choice(backend, ["torch", "onnx"], "--backend")
    if out.exists() and not overwrite:
        fail(f"{out} exists: pass --overwrite to replace it", code=2)
    from vislab.product.backends import load_predictor, model_meta, model_tta
    path, meta = model_meta(checkpoint, backend)
    tta = model_tta(meta) if tta is None else tta
    items = resolve_inputs(inputs, image_col, image_dir, image_ext)  # every input checked before the model loads
    from vislab.product.index import build_index, model_info
    predictor = load_predictor(path, backend, tta=tta)
    index = build_index(predictor, items, pca, batch_size, workers, progress, err, model_info(path, meta, tta))
    index.save(out)
    skipped = len(index.meta["skipped"])
    console.print(f"indexed {len(index)} images ({index.embeddings.shape[1]}-d"
                  + (f", PCA from {predictor.net.num_features if hasattr(predictor, 'net') else '?'}" if pca else "")
                  + f"){f', {skipped} unreadable left out' if skipped else ''} -> {out}")


@friendly
@documented(None, None, "vislab fashion similar catalog.index shirt.jpg -k 10",
            "vislab fashion similar catalog.index shirt.jpg --json --grid similar.png",
            none={"model": "the checkpoint the index was built with", "grid": "no image"})
def similar_cmd(index: Annotated[Path, typer.Argument(metavar="INDEX", help="An index from `vislab fashion index`.")],
                images: Annotated[list[Path], typer.Argument(metavar="IMAGE...", help="Query photos.")],
                k: Annotated[int, typer.Option("-k", "--top", min=1, help="Products per query.")] = 10,
                model: Annotated[Optional[Path], typer.Option(
                    metavar="MODEL", help="The model that embeds the queries.")] = None,
                as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
                grid: Annotated[Optional[Path], typer.Option(
                    metavar="FILE", help="Also draw each query and its matches (PNG; several queries: one row each)."
                )] = None,
                backend: BackendOpt = None):
    """The catalog products most similar to each query photo (cosine similarity of the embeddings)."""
    from vislab.core.cli import require_path
    from vislab.product.index import read_index
    for im in images:
        require_path(im, "IMAGE", "file")
    info = read_index(index)
    ckpt = model or Path(info["model"].get("checkpoint", ""))
    from vislab.product.backends import load_predictor, model_meta
    path, meta = model_meta(ckpt, backend)
    if list(meta["image_size"]) != info["model"].get("image_size"):
        fail(f"{ckpt} takes {meta['image_size']} images; the index was built at {info['model'].get('image_size')} "
             "by another model: pass the index's own with --model", code=2)
    from vislab.product.index import CatalogIndex
    idx = CatalogIndex.load(index)
    predictor = load_predictor(path, backend, tta=bool(info["model"].get("tta", False)))  # as the index was built
    hits = idx.search(idx.embed(predictor, images), k)
    results = [{"query": str(q), "matches": [h.as_dict() for h in hs]} for q, hs in zip(images, hits)]
    if grid is not None:
        from vislab.product.similar_plot import similar_grid
        similar_grid(images, hits, grid)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    from rich.table import Table
    for r in results:
        t = Table(title=f"most similar to {r['query']}")
        for c in ("rank", "id", "score", "labels", "path"):
            t.add_column(c)
        for h in r["matches"]:
            t.add_row(str(h["rank"]), h["id"], f"{h['score']:.3f}", ", ".join(h["labels"].values()), h["path"])
        console.print(t)
    if grid is not None:
        console.print(f"grid: {grid}")
