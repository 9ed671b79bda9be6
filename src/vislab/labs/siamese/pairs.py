"""Identity-level data handling of the Siamese lab (issue 4): split by person, pairs, triplets.

Everything works on an integer identity label per image (`labels[i]` = person of image i), so
it serves any folder of person subfolders once `vislab.core.data.load_folder` has read it.

- `drop_singletons`: people with fewer than two images cannot form a positive pair; they are
  removed and counted.
- `split_people`: train/val/test by person (no person in two splits), seeded, through
  scikit-learn's `train_test_split` on the list of people.
- `PairSampler`: for each anchor image, with probability `positive_rate` another image of the
  same person (label 1), else an image of a different person (label 0); a new draw every epoch
  from (seed, epoch), so runs and resumed runs see the same pairs.
- `TripletSampler`: (anchor, positive, negative) per anchor image, drawn the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split


@dataclass
class PersonSplit:
    """Image indices and people of each split."""
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    people: dict[str, list[int]]

    def sizes(self) -> dict[str, dict[str, int]]:
        """{split: {"people": n, "images": n}} for the report."""
        return {k: {"people": len(self.people[k]), "images": len(getattr(self, k))} for k in ("train", "val", "test")}


def drop_singletons(labels: np.ndarray, min_images: int = 2) -> tuple[np.ndarray, list[int]]:
    """(kept image indices, dropped people) for people with fewer than `min_images` images."""
    labels = np.asarray(labels)
    ids, counts = np.unique(labels, return_counts=True)
    dropped = [int(p) for p, c in zip(ids, counts) if c < min_images]
    keep = np.flatnonzero(~np.isin(labels, dropped))
    return keep, dropped


def split_people(labels: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 seed: int = 0) -> PersonSplit:
    """Split images by person; every split gets at least one person when val/test fractions are > 0."""
    labels = np.asarray(labels)
    if abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    people = np.unique(labels)
    n_val_test = sum(fractions[1:])
    need = 1 + (fractions[1] > 0) + (fractions[2] > 0)
    if len(people) < need:
        raise ValueError(f"{len(people)} people cannot be split into {need} non-empty splits by person")
    if n_val_test == 0:
        tr, va, te = people, people[:0], people[:0]
    else:
        n_rest = max(need - 1, int(round(n_val_test * len(people))))
        tr, rest = train_test_split(people, test_size=n_rest, random_state=seed, shuffle=True)
        if fractions[1] == 0 or fractions[2] == 0:
            va, te = (rest[:0], rest) if fractions[1] == 0 else (rest, rest[:0])
        else:
            n_test = max(1, min(len(rest) - 1, int(round(len(rest) * fractions[2] / n_val_test))))
            va, te = train_test_split(rest, test_size=n_test, random_state=seed + 1, shuffle=True)
    sets = {"train": np.sort(tr), "val": np.sort(va), "test": np.sort(te)}
    idx = {k: np.flatnonzero(np.isin(labels, v)) for k, v in sets.items()}
    return PersonSplit(idx["train"], idx["val"], idx["test"], {k: [int(p) for p in v] for k, v in sets.items()})


class _IdentitySampler:
    def __init__(self, labels: np.ndarray, indices: np.ndarray | None = None, seed: int = 0):
        labels = np.asarray(labels)
        self.indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
        self.labels = labels
        sub = labels[self.indices]
        self.by_person = {int(p): self.indices[sub == p] for p in np.unique(sub)}
        small = [p for p, v in self.by_person.items() if len(v) < 2]
        if small:
            raise ValueError(f"people {small} have fewer than 2 images here; drop them first (pairs.drop_singletons)")
        if len(self.by_person) < 2:
            raise ValueError("pairs and triplets need at least 2 people")
        self.seed = seed

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def _positive(self, rng: np.random.Generator, i: int) -> int:
        same = self.by_person[int(self.labels[i])]
        j = i
        while j == i:
            j = int(same[rng.integers(len(same))])
        return j

    def _negative(self, rng: np.random.Generator, i: int) -> int:
        while True:
            j = int(self.indices[rng.integers(len(self.indices))])
            if self.labels[j] != self.labels[i]:
                return j


class PairSampler(_IdentitySampler):
    """One pair per anchor image per epoch: (anchors, others, same) arrays, same = 1 for a positive pair."""

    def __init__(self, labels: np.ndarray, indices: np.ndarray | None = None, seed: int = 0,
                 positive_rate: float = 0.5):
        super().__init__(labels, indices, seed)
        if not 0 <= positive_rate <= 1:
            raise ValueError(f"positive_rate must be in [0, 1], got {positive_rate}")
        self.positive_rate = positive_rate

    def pairs(self, epoch: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self._rng(epoch)
        same = (rng.random(len(self.indices)) < self.positive_rate).astype(np.int64)
        other = np.array([self._positive(rng, int(i)) if s else self._negative(rng, int(i))
                          for i, s in zip(self.indices, same)], dtype=np.int64)
        return self.indices.copy(), other, same


class TripletSampler(_IdentitySampler):
    """One (anchor, positive, negative) triplet per anchor image per epoch."""

    def triplets(self, epoch: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self._rng(epoch)
        pos = np.array([self._positive(rng, int(i)) for i in self.indices], dtype=np.int64)
        neg = np.array([self._negative(rng, int(i)) for i in self.indices], dtype=np.int64)
        return self.indices.copy(), pos, neg


def person_folds(split: PersonSplit, labels: np.ndarray, folds: int, seed: int = 0) -> list[PersonSplit]:
    """K-fold cross-validation by person over the split's training and validation people: fold k validates
    on one K-th of them and trains on the rest. The test people and images stay as they are, so choosing a
    setting by the folds' mean never looks at them; with K folds every one of those people is a validation
    person once (27 of the 31 shared faces instead of 5)."""
    from sklearn.model_selection import KFold
    labels = np.asarray(labels)
    pool = np.array(sorted(split.people["train"] + split.people["val"]))
    if not 2 <= folds <= len(pool) // 2:
        raise ValueError(f"{folds} folds of {len(pool)} training and validation people: use 2 to {len(pool) // 2} "
                         "(each fold needs at least 2 validation people)")
    out = []
    for tr, va in KFold(folds, shuffle=True, random_state=seed).split(pool):
        sets = {"train": pool[tr], "val": pool[va]}
        idx = {k: np.flatnonzero(np.isin(labels, v)) for k, v in sets.items()}
        out.append(PersonSplit(idx["train"], idx["val"], split.test.copy(),
                               {"train": [int(p) for p in sets["train"]], "val": [int(p) for p in sets["val"]],
                                "test": list(split.people["test"])}))
    return out
