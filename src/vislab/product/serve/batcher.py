"""Micro-batching: requests that arrive together are answered by one forward pass.

A batch is every image queued when the inference thread becomes free (up to `max_batch`), after waiting up
to `wait_ms` for more (default 0: no wait). The batch runs on the single inference thread, off the event
loop, while the next batch gathers: under load the model runs large batches, which on a CPU cost far less
per image than one image at a time; alone, a request runs at once. With micro-batching off every request
is its own forward pass on the same thread."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    def __init__(self, predict: Callable[[np.ndarray], list], executor: ThreadPoolExecutor, max_batch: int = 32,
                 wait_ms: float = 0.0, enabled: bool = True):
        self.predict, self.executor = predict, executor
        self.max_batch, self.wait_s, self.enabled = max_batch, wait_ms / 1000, enabled
        self.queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.images = 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self.queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def submit(self, images: list[np.ndarray]) -> list:
        """Predictions for (3, H, W) uint8 images, in order."""
        if not images:
            return []
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await self._forward(loop, images)
        futures = [loop.create_future() for _ in images]
        for im, fut in zip(images, futures):
            self.queue.put_nowait((im, fut))
        return list(await asyncio.gather(*futures))

    async def _forward(self, loop, images: list[np.ndarray]) -> list:
        self.batches += 1
        self.images += len(images)
        return await loop.run_in_executor(self.executor, self.predict, np.stack(images))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            deadline = time.monotonic() + self.wait_s
            while True:  # drain what is queued; poll (never wait_for(get()): it can drop an item on timeout)
                while len(items) < self.max_batch and not self.queue.empty():
                    items.append(self.queue.get_nowait())
                left = deadline - time.monotonic()
                if len(items) >= self.max_batch or left <= 0:
                    break
                await asyncio.sleep(min(left, 0.0005))
            items = [(im, f) for im, f in items if not f.done()]  # a client that went away
            if not items:
                continue
            try:
                preds = await self._forward(loop, [im for im, _ in items])
            except Exception as e:  # noqa: BLE001  every waiting request gets the error, the loop goes on
                for _, f in items:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), p in zip(items, preds):
                if not f.done():
                    f.set_result(p)
