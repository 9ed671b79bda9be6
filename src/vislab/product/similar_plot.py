"""The image grid of `vislab fashion similar --grid`: each query, then its matches with score, id and labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def similar_grid(queries, hits, path, size=(160, 120)) -> Path:
    from vislab.core import plots
    from vislab.core.data.images import ImageError, load_image

    def read(p):
        try:
            return load_image(p, size)
        except ImageError:
            return np.full((*size, 3), 230, np.uint8)

    k = max(len(h) for h in hits)
    imgs, titles = [], []
    for q, hs in zip(queries, hits):
        imgs.append(read(q))
        titles.append(f"query\n{plots.short(Path(q).name, 18)}")
        for h in hs:
            imgs.append(read(h.path))
            titles.append(f"{h.rank}. {h.score:.3f} {plots.short(h.id, 10)}\n"
                          f"{plots.short(h.labels.get('articleType', ''), 18)}")
        for _ in range(k - len(hs)):
            imgs.append(np.full((*size, 3), 255, np.uint8))
            titles.append("")
    return plots.grid(imgs, titles, path, "", k + 1, "black", 1.7)
