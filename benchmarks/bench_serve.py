"""Load test of `vislab serve` on loopback: latency percentiles and requests/s at several concurrencies,
with and without micro-batching, in one run.

Each setting starts its own server (a subprocess, the same command a user runs), waits for /readyz,
warms up, then keeps CONCURRENCY requests in flight (POST /v1/tag, one real catalog photo each, cycled)
until --requests have completed or --seconds have passed, whichever is first. The client is one asyncio
process (httpx), on the same machine: on 2 cores it takes some of the CPU the server would have.

    python benchmarks/bench_serve.py --checkpoint runs/fashion
    python benchmarks/bench_serve.py --checkpoint runs/fashion --concurrency 1,4,16 --requests 400 --json serve.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(checkpoint: str, flags: list[str]) -> tuple[subprocess.Popen, str]:
    import httpx
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vislab", "serve", checkpoint, "--port", str(port),
                             "--log-level", "warning", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


async def load(url: str, images: list[bytes], concurrency: int, requests: int, seconds: float) -> dict:
    import httpx
    lat: list[float] = []
    errors = 0
    sent = 0
    t_end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        async def worker():
            nonlocal sent, errors
            while sent < requests and time.perf_counter() < t_end:
                img = images[sent % len(images)]
                sent += 1
                t = time.perf_counter()
                r = await c.post("/v1/tag", files={"file": ("p.jpg", img, "image/jpeg")})
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-products" / "images"))
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=300, help="Most requests per cell")
    ap.add_argument("--seconds", type=float, default=30.0, help="Most seconds per cell")
    ap.add_argument("--wait-ms", type=float, default=4.0, help="--batch-wait-ms of the micro-batching server")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from vislab.core.data.paths import folder_images
    images = [f.read_bytes() for f in folder_images(Path(a.data))[:64]]
    levels = [int(x) for x in a.concurrency.split(",")]
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"torch {version('torch')}, uvicorn {version('uvicorn')}, fastapi {version('fastapi')}; "
          f"checkpoint {a.checkpoint}; {len(images)} catalog photos cycled; per cell at most {a.requests} "
          f"requests or {a.seconds:g} s; client and server on this machine")
    results = []
    servers = (("micro-batching", ["--batch-wait-ms", str(a.wait_ms)]), ("one at a time", ["--no-micro-batch"]))
    for name, flags in servers:
        proc, url = start(a.checkpoint, flags)
        try:
            asyncio.run(load(url, images, 4, 40, 30))  # warm-up
            for c in levels:
                r = asyncio.run(load(url, images, c, a.requests, a.seconds))
                results.append({"server": name, "concurrency": c, **r})
                print(f"  {name:<15} c={c:<3} {r['rps']:6.1f} req/s  p50 {r['p50_ms']:6.0f}  p95 {r['p95_ms']:6.0f}  "
                      f"p99 {r['p99_ms']:6.0f} ms  ({r['requests']} requests, {r['errors']} errors)", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    print("\n| server | concurrency | requests/s | p50 ms | p95 ms | p99 ms | vs concurrency 1 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        base = next(x["rps"] for x in results if x["server"] == r["server"] and x["concurrency"] == levels[0])
        print(f"| {r['server']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['rps'] / base:.2f}x |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "settings": vars(a) | {"json": str(a.json)},
                                      "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
