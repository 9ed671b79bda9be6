"""Batch tagging: worker processes decode and predict whole batches, the main process appends the rows.

Each worker (a torch DataLoader worker, forked with the loaded predictor) runs one batch at a time on one
torch thread: on a CPU, N single-threaded forward passes side by side get more from N cores than one
N-threaded pass (small depthwise convolutions scale poorly across threads). With workers=0 the main
process decodes and predicts with all its threads.

Memory stays bounded whatever the catalog size: only the paths are listed up front and at most
`workers x 2` batches are in flight. An image that cannot be read becomes a row with its error and the run
goes on; `resume` skips the paths the output already has."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vislab.core.data.images import ImageError, load_image
from vislab.product.inputs import TagInput
from vislab.product.outputs import TagWriter


class DecodeDataset(Dataset):
    """Item i: (i, (3, H, W) uint8 array or None, error text)."""

    def __init__(self, inputs: list[TagInput], size: tuple[int, int]):
        self.inputs, self.size = inputs, size

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int):
        item = self.inputs[i]
        if item.error:
            return i, None, item.error
        try:
            return i, load_image(item.path, self.size).transpose(2, 0, 1), ""
        except ImageError as e:
            return i, None, str(e)
        except Exception as e:  # noqa: BLE001  (one bad file never stops the run)
            return i, None, f"{item.path}: {type(e).__name__}: {e}"


class TagBatches(Dataset):
    """Item k: the rows of batch k of `inputs` (decoded, then `fn(predictor, decoded, inputs)`, where the item
    is fetched)."""

    def __init__(self, inputs: list[TagInput], predictor, batch_size: int, fn=None):
        self.inputs, self.predictor, self.batch_size = inputs, predictor, batch_size
        self.fn = fn or predict_items
        self.decode = DecodeDataset(inputs, predictor.image_size)

    def __len__(self) -> int:
        return (len(self.inputs) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, k: int) -> list[tuple[str, dict | None, str]]:
        idx = range(k * self.batch_size, min((k + 1) * self.batch_size, len(self.inputs)))
        return self.fn(self.predictor, [self.decode[i] for i in idx], self.inputs)


def _one_thread(_worker_id: int) -> None:
    torch.set_num_threads(1)


@dataclass
class TagSummary:
    total: int
    skipped: int
    tagged: int = 0
    errors: int = 0
    needs_review: int = 0
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return (self.tagged + self.errors) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "images_per_s": round(self.images_per_s, 1)}

    def count(self, rows: list[tuple[str, dict | None, str]]) -> None:
        for _, r, e in rows:
            self.errors += bool(e)
            self.tagged += r is not None
            self.needs_review += bool(r and r["needs_review"])


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def batches(inputs: list[TagInput], predictor, batch_size: int, workers: int, fn=None):
    """Lists of rows in input order (`fn`: what a decoded batch becomes, default `predict_items`). On a CPU each
    worker decodes and predicts its batches; on a GPU (which a forked worker cannot use) or with ONNX Runtime
    (whose thread pools do not survive a fork) the workers decode and this process predicts."""
    fn = fn or predict_items
    if getattr(predictor, "predicts_in_workers", False):
        yield from DataLoader(TagBatches(inputs, predictor, batch_size, fn), batch_size=None, num_workers=workers,
                              prefetch_factor=2 if workers else None,
                              worker_init_fn=_one_thread if workers else None)
        return
    decoded = DataLoader(DecodeDataset(inputs, predictor.image_size), batch_size=batch_size, num_workers=workers,
                         collate_fn=list, prefetch_factor=2 if workers else None)
    for batch in decoded:
        yield fn(predictor, batch, inputs)


def predict_items(predictor, batch: list, inputs: list[TagInput]) -> list[tuple[str, dict | None, str]]:
    """Rows for one decoded batch, in input order."""
    ok = [(i, a) for i, a, e in batch if a is not None]
    preds = iter(predictor.predict_arrays(np.stack([a for _, a in ok])) if ok else [])
    return [(inputs[i].path, next(preds).as_dict() if a is not None else None, e) for i, a, e in batch]


def tag(predictor, inputs: list[TagInput], writer: TagWriter, batch_size: int = 32, workers: int | None = None,
        progress: bool = True, console=None) -> TagSummary:
    """Tag every input not yet in `writer`; returns counts and speed."""
    todo = [x for x in inputs if x.path not in writer.done]
    summary = TagSummary(total=len(inputs), skipped=len(inputs) - len(todo))
    if not todo:
        return summary
    workers = default_workers() if workers is None else workers
    t0 = time.perf_counter()
    with _progress(progress, console) as bar:
        task = bar.add_task("tagging", total=len(todo))
        for rows in batches(todo, predictor, batch_size, workers):
            writer.write(rows)
            summary.count(rows)
            bar.advance(task, len(rows))
    summary.seconds = time.perf_counter() - t0
    return summary


def _progress(enabled: bool, console=None):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} img/s" if speed else "- img/s")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Speed(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                    disable=not enabled, transient=False)

