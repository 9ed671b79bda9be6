"""`vislab fashion tag --ray`: the same predictor as a Ray Data `map_batches` stage.

Ray Data schedules the stage on a pool of actors (each loads the checkpoint once, decodes and predicts its
batches) across every machine of the cluster; the driver writes the rows to the same tag file as a local
run, so `--resume` and the output format are the same. Without RAY_ADDRESS Ray starts a local cluster on
this machine's cores; with RAY_ADDRESS=ray://head:10001 (or `ray start --address ...`) it joins a cluster,
whose workers must be able to read the checkpoint and the images (a shared file system or the same paths).

Install with `pip install 'vislab[ray]'`."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from vislab.core.errors import VislabError
from vislab.product.inputs import TagInput
from vislab.product.outputs import TagWriter
from vislab.product.tag import TagSummary, _progress


def require_ray() -> None:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise VislabError("--ray needs Ray Data: pip install 'vislab[ray]' (or leave out --ray)") from None


class TagStage:
    """A Ray Data actor: loads the predictor once, then tags batches of {"path", "error"} rows."""

    def __init__(self, checkpoint: str, thresholds: dict | None = None, top_k: int = 3, threads: int = 1,
                 precision: str = "32", backend: str | None = None, tta: bool = False):
        import torch

        from vislab.product.backends import load_predictor
        torch.set_num_threads(threads)
        self.predictor = load_predictor(checkpoint, backend, thresholds=thresholds, top_k=top_k,
                                        precision=precision, tta=tta, **({"threads": threads} if backend == "onnx" or
                                                                str(checkpoint).endswith(".onnx") else {}))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from vislab.core.data.images import load_image
        paths, errors = [str(p) for p in batch["path"]], [str(e) for e in batch["error"]]
        arrays, results = {}, [""] * len(paths)
        for i, (p, e) in enumerate(zip(paths, errors)):
            if e:
                continue
            try:
                arrays[i] = load_image(p, self.predictor.image_size).transpose(2, 0, 1)
            except Exception as ex:  # noqa: BLE001  (an unreadable file is a row with its error)
                errors[i] = str(ex)
        if arrays:
            preds = self.predictor.predict_arrays(np.stack(list(arrays.values())))
            for i, pred in zip(arrays, preds):
                results[i] = json.dumps(pred.as_dict())
        return {"path": np.array(paths, dtype=object), "result": np.array(results, dtype=object),
                "error": np.array(errors, dtype=object)}


def init_ray(num_cpus: int | None = None) -> None:
    """Join RAY_ADDRESS's cluster, or start a local one on this machine's cores."""
    import ray
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def tag_with_ray(checkpoint, inputs: list[TagInput], writer: TagWriter, batch_size: int = 32,
                 thresholds: dict | None = None, top_k: int = 3, actors: int | None = None, precision: str = "32",
                 backend: str | None = None, tta: bool = False,
                 progress: bool = True, console=None) -> TagSummary:
    import ray
    todo = [x for x in inputs if x.path not in writer.done]
    summary = TagSummary(total=len(inputs), skipped=len(inputs) - len(todo))
    if not todo:
        return summary
    init_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # rows come back in input order
    ctx.enable_progress_bars = False
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    actors = actors or cpus
    t0 = time.perf_counter()
    ds = ray.data.from_items([{"path": x.path, "error": x.error} for x in todo])
    ds = ds.map_batches(TagStage, fn_constructor_kwargs={"checkpoint": str(checkpoint), "thresholds": thresholds,
                                                         "top_k": top_k, "precision": precision,
                                                         "backend": backend, "tta": tta},
                        batch_size=batch_size, batch_format="numpy", concurrency=actors, num_cpus=1)
    with _progress(progress, console) as bar:
        task = bar.add_task("tagging (ray)", total=len(todo))
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            rows = [(str(p), json.loads(r) if r else None, str(e))
                    for p, r, e in zip(batch["path"], batch["result"], batch["error"])]
            writer.write(rows)
            summary.count(rows)
            bar.advance(task, len(rows))
    summary.seconds = time.perf_counter() - t0
    return summary
