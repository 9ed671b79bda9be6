"""Class-folder / CIFAR-pickle readers and the validation split, on hand-made files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vislab.core.data.folders import load_folder, scan_folder
from vislab.core.data.images import DataError
from vislab.core.data.splits import take_per_class, val_split


def _folder(root, spec: dict[str, int], size=(32, 32)):
    rng = np.random.default_rng(0)
    for c, n in spec.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_folder_reads_every_class_skips_and_counts_bad_files(tmp_path):
    root = _folder(tmp_path / "train", {"cat": 4, "dog": 3})
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "cat" / "empty.png").write_bytes(b"")
    Image.new("L", (40, 20), 128).save(root / "cat" / "gray_wide.png")  # other mode and size
    s = load_folder(root, (32, 32), progress=False)
    assert s.classes == ["cat", "dog"]
    assert s.images.shape == (8, 3, 32, 32) and s.images.dtype == np.uint8
    assert s.counts() == {"cat": 5, "dog": 3}
    assert s.skipped == {"not an image file (by extension)": 1, "empty file": 1,
                         "unreadable (corrupt or not an image)": 1}
    assert any("broken.jpg" in e for e in s.skipped_examples)


def test_folder_class_mismatches(tmp_path):
    train = _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    test = _folder(tmp_path / "test", {"cat": 2, "dog": 2, "emu": 1})
    with pytest.raises(DataError, match=r"\['emu'\] are not among the model's classes"):
        load_folder(test, classes=["cat", "dog"], progress=False)
    only_cat = _folder(tmp_path / "test2", {"cat": 2})
    s = load_folder(only_cat, classes=["cat", "dog"], progress=False, require_all=False)
    assert s.classes == ["cat", "dog"] and s.counts() == {"cat": 2, "dog": 0}
    (train / "owl").mkdir()
    with pytest.raises(DataError, match=r"\['owl'\] hold no readable image"):
        load_folder(train, progress=False)
    with pytest.raises(DataError, match="no class folders"):
        scan_folder(tmp_path / "train" / "cat")
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "nope")


def test_val_split_per_class_and_fraction():
    labels = np.repeat(np.arange(5), 40)
    tr, va = val_split(labels, "per_class", per_class=7, seed=1)
    assert np.bincount(labels[va]).tolist() == [7] * 5
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 200
    tr2, va2 = val_split(labels, "per_class", per_class=7, seed=1)
    assert np.array_equal(va, va2)  # seeded
    assert not np.array_equal(va, val_split(labels, "per_class", per_class=7, seed=2)[1])
    tr, va = val_split(labels, "fraction", fraction=0.1, seed=0)
    assert len(va) == 20 and len(np.union1d(tr, va)) == 200
    with pytest.raises(DataError, match="leave none to train"):
        val_split(labels, "per_class", per_class=40)
    assert np.bincount(labels[take_per_class(labels, 3)]).tolist() == [3] * 5
