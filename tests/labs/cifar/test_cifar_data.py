"""CIFAR-10 readers: the original pickles (safe unpickler) and the torchvision download."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from vislab.core.data.images import DataError
from vislab.labs.cifar.data import CIFAR10_CLASSES, load_cifar_pickles, load_torchvision_cifar


def _batch(path, n, seed):
    rng = np.random.default_rng(seed)
    d = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n)),
         b"batch_label": b"x"}
    with open(path, "wb") as f:
        pickle.dump(d, f)
    return d


def test_cifar_pickles_round_trip_and_refuse_code(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batches = [_batch(d / f"data_batch_{i}", 6, i) for i in range(1, 6)]
    test = _batch(d / "test_batch", 4, 9)
    tr, te = load_cifar_pickles(tmp_path)
    assert tr.images.shape == (30, 3, 32, 32) and te.images.shape == (4, 3, 32, 32) and tr.classes == CIFAR10_CLASSES
    # row layout: 1024 red, 1024 green, 1024 blue values, row-major
    assert np.array_equal(tr.images[6], batches[1][b"data"][0].reshape(3, 32, 32))
    assert tr.labels.tolist() == [int(v) for b in batches for v in b[b"labels"]]
    assert te.labels.tolist() == [int(v) for v in test[b"labels"]]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(DataError, match="refused to load builtins.print"):
        load_cifar_pickles(tmp_path)
    (d / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3: CIFAR-10 batch file missing"):
        load_cifar_pickles(tmp_path)


def test_torchvision_offline_error_is_clear(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_net(*a, **k):
        raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_net)
    with pytest.raises(DataError, match="could not be downloaded.*Offline\\?"):
        load_torchvision_cifar(tmp_path, download=True)
