"""Batches from in-memory arrays: one gather per batch (`__getitems__`), no per-image Python work."""
from __future__ import annotations

import warnings

import numpy as np
import torch


class ArrayDataset(torch.utils.data.Dataset):
    """Rows `index` of in-memory arrays; fetched a whole batch at a time (`__getitems__`)."""

    def __init__(self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, index: np.ndarray | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only memmap: we never write to it
            self.x = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        self.y = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
        self.index = torch.as_tensor(np.arange(len(self.x)) if index is None else np.asarray(index), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        j = self.index[i]
        return self.x[j], self.y[j]

    def __getitems__(self, idxs):
        j = self.index[torch.as_tensor(idxs, dtype=torch.long)].sort().values
        return self.x[j], self.y[j]


def _identity(batch):
    return batch


def batch_loader(x, y, index, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0,
                 drop_last: bool = False) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ArrayDataset(x, y, index), batch_size=batch_size, shuffle=shuffle,
                                       generator=g, num_workers=num_workers, collate_fn=_identity,
                                       drop_last=drop_last, persistent_workers=num_workers > 0)
