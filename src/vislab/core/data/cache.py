"""The decode-once image cache: every image is decoded and resized exactly once per machine (in
parallel processes), into one uint8 array file keyed by the file list (path, size, mtime) and the
resolution; epochs read slices of it. Unreadable files get a status code, never an exception."""
from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vislab.core.data.images import EMPTY, MISSING, OK, TOO_LARGE, UNREADABLE, ImageError, load_image


def _status_of(exc: ImageError) -> int:
    msg = str(exc)
    if "does not exist" in msg:
        return MISSING
    if "is empty" in msg:
        return EMPTY
    if "decompression-bomb" in msg:
        return TOO_LARGE
    return UNREADABLE


def _decode_chunk(args) -> list[tuple[int, int]]:
    out_path, shape, paths, start, size = args
    arr = np.lib.format.open_memmap(out_path, mode="r+")
    status = []
    for i, p in enumerate(paths):
        try:
            arr[start + i] = load_image(p, size).transpose(2, 0, 1)
            status.append((start + i, OK))
        except ImageError as e:
            arr[start + i] = 0
            status.append((start + i, _status_of(e)))
    arr.flush()
    del arr
    return status


def cache_root(cfg_dir: str | None = None) -> Path:
    root = Path(cfg_dir or os.environ.get("VISLAB_CACHE") or Path.home() / ".cache" / "vislab")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _files_key(paths: Sequence[Path], size: tuple[int, int]) -> str:
    h = hashlib.sha1(f"v1|{size[0]}x{size[1]}|{len(paths)}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|-\n".encode())
    return h.hexdigest()[:20]


def decode_images(paths: Sequence[str | Path], size: tuple[int, int], cache_dir: str | None = None,
                  workers: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, Path]:
    """Decode + resize every image once; return (uint8 N x 3 x H x W memmap, status N, cache file).

    A second call with the same files (path, size, mtime) and resolution reads the cache.
    """
    paths = [Path(p) for p in paths]
    key = _files_key(paths, size)
    d = cache_root(cache_dir) / "images"
    d.mkdir(parents=True, exist_ok=True)
    arr_path, st_path = d / f"{key}.npy", d / f"{key}.status.npy"
    if arr_path.is_file() and st_path.is_file():
        return np.load(arr_path, mmap_mode="r"), np.load(st_path), arr_path
    n = len(paths)
    shape = (n, 3, size[0], size[1])
    tmp = d / f"{key}.{os.getpid()}.tmp.npy"
    np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
    workers = workers or os.cpu_count() or 1
    chunk = max(64, math.ceil(n / (workers * 8)))
    jobs = [(str(tmp), shape, paths[s:s + chunk], s, size) for s in range(0, n, chunk)]
    status = np.zeros(n, dtype=np.uint8)
    from rich.progress import Progress
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(f"decoding {n} images to {size[0]}x{size[1]} (once; cached)", total=n)
        if workers > 1 and n > 256:
            ctx = torch.multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
                for res in ex.map(_decode_chunk, jobs):
                    for i, s in res:
                        status[i] = s
                    bar.advance(task, len(res))
        else:
            for job in jobs:
                res = _decode_chunk(job)
                for i, s in res:
                    status[i] = s
                bar.advance(task, len(res))
    st_tmp = d / f"{key}.{os.getpid()}.tmp.status.npy"
    np.save(st_tmp, status)
    os.replace(tmp, arr_path)
    os.replace(st_tmp, st_path)
    return np.load(arr_path, mmap_mode="r"), status, arr_path
