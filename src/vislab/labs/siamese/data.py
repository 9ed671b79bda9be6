"""Faces in memory: person folders decoded once (uint8), people split into train/val/test."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vislab.core.data.folders import load_folder
from vislab.core.data.images import DataError
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.pairs import PersonSplit, split_people


@dataclass
class FaceData:
    images: np.ndarray
    """uint8 (N, 3, H, W), people with enough images only."""
    labels: np.ndarray
    """int64 (N,), index into `people`."""
    people: list[str]
    split: PersonSplit
    excluded: dict[str, int]
    """What was left out and why (people with one image, empty folders, non-image or corrupt files)."""
    source: str

    def rows(self) -> list[list]:
        sz = self.split.sizes()
        out = [[k, v["people"], v["images"]] for k, v in sz.items()]
        out += [[f"excluded: {k}", n, ""] for k, n in self.excluded.items()]
        return out


def all_tested(labels: np.ndarray) -> PersonSplit:
    """A split with every image and person in test (train and val empty)."""
    none = np.zeros(0, dtype=np.int64)
    return PersonSplit(none, none, np.arange(len(labels)), {"train": [], "val": [],
                                                             "test": [int(p) for p in np.unique(labels)]})


def on_split(cfg: SiameseRunConfig, seed: int) -> SiameseRunConfig:
    """cfg on another person split (data.seed)."""
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"seed": seed})})


def load_data(cfg: SiameseRunConfig, progress: bool = True, all_test: bool = False) -> FaceData:
    """The faces of `cfg.data.root`, split by person; with `all_test` every person is a test person (another
    folder of people evaluated with a trained model's validation threshold)."""
    dc = cfg.data
    s = load_folder(dc.root, tuple(dc.image_size), cache_dir=dc.cache_dir, workers=dc.workers, progress=progress,
                    require_all=False)
    counts = np.bincount(s.labels, minlength=len(s.classes))
    excluded = dict(s.skipped)
    empty = int((counts == 0).sum())
    few = [c for c, n in zip(s.classes, counts) if 0 < n < dc.min_images]
    if empty:
        excluded["people with no readable image (empty folders)"] = empty
    if few:
        excluded[f"people with fewer than {dc.min_images} images (e.g. {few[0]})"] = len(few)
    keep_people = [k for k, n in enumerate(counts) if n >= dc.min_images]
    need = 2 if all_test else 3
    if len(keep_people) < need:
        raise DataError(f"{dc.root}: {len(keep_people)} people with at least {dc.min_images} images; "
                        + ("verification needs same-person and different-person pairs, so at least 2" if all_test
                           else "train/val/test by person needs at least 3"))
    remap = np.full(len(s.classes), -1, dtype=np.int64)
    remap[keep_people] = np.arange(len(keep_people))
    rows = np.flatnonzero(remap[s.labels] >= 0)
    images = s.images if len(rows) == len(s.labels) else np.asarray(s.images[rows])
    labels = remap[s.labels[rows]]
    split = all_tested(labels) if all_test else split_people(labels, tuple(dc.split), dc.seed)
    return FaceData(np.asarray(images), labels, [s.classes[k] for k in keep_people], split, excluded, s.source)
