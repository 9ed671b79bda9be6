"""Load test of `vislab serve` on loopback: latency percentiles and requests/s at several concurrencies,
with and without micro-batching, in one run.

Both servers start first (subprocesses, the command a user runs) and wait for /readyz; then, for each
round and concurrency, each server in turn gets CONCURRENCY requests kept in flight (POST /v1/tag, real
catalog photos, cycled) for --seconds, so a slower moment of a shared machine slows both alike; the
median over --rounds is reported. The client is `wrk` (Debian package `wrk`, C, little CPU; with
benchmarks/serve_load.lua) when installed, else an asyncio httpx client bounded by --requests. Client and
server share the machine: on 2 cores the client takes some of the CPU.

    python benchmarks/bench_serve.py --checkpoint runs/fashion
    python benchmarks/bench_serve.py --checkpoint runs/fashion --concurrency 1,4,16 --seconds 10 --json serve.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
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


def wrk_load(url: str, files: list[Path], concurrency: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s",
                          "-s", str(Path(__file__).with_name("serve_load.lua")), url, "--", *map(str, files)],
                         capture_output=True, text=True, check=True).stdout
    r = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    return {"requests": r["requests"], "errors": r["errors"], "rps": r["requests"] / r["seconds"],
            "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"]}


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
    ap.add_argument("--seconds", type=float, default=10.0, help="Seconds per cell")
    ap.add_argument("--requests", type=int, default=2000, help="Most requests per cell (httpx client)")
    ap.add_argument("--rounds", type=int, default=2, help="Interleaved rounds; medians are reported")
    ap.add_argument("--wait-ms", type=float, default=0.0, help="--batch-wait-ms of the micro-batching server")
    ap.add_argument("--flags", default="", help="Extra `vislab serve` flags for both servers, e.g. '--precision bf16'")
    ap.add_argument("--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from vislab.core.data.paths import folder_images
    files = folder_images(Path(a.data))[:64]
    images = [f.read_bytes() for f in files]
    levels = [int(x) for x in a.concurrency.split(",")]
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"torch {version('torch')}, uvicorn {version('uvicorn')}, fastapi {version('fastapi')}; "
          f"checkpoint {a.checkpoint}; {len(images)} catalog photos cycled; {a.seconds:g} s per cell, "
          f"{a.rounds} rounds; client {a.client}, on this machine; serve flags: {a.flags or '-'}")
    extra = a.flags.split()
    servers = {"micro-batching": ["--batch-wait-ms", str(a.wait_ms), *extra], "one at a time": ["--no-micro-batch",
                                                                                                 *extra]}
    procs = {name: start(a.checkpoint, flags) for name, flags in servers.items()}
    cells: dict = {}
    try:
        for _, url in procs.values():
            asyncio.run(load(url, images, 4, 40, 30))  # warm-up
        for rnd in range(a.rounds):
            for c in levels:
                for name, (_, url) in procs.items():
                    r = (wrk_load(url, files, c, a.seconds) if a.client == "wrk"
                         else asyncio.run(load(url, images, c, a.requests, a.seconds)))
                    cells.setdefault((name, c), []).append(r)
                    print(f"  round {rnd + 1} {name:<15} c={c:<3} {r['rps']:6.1f} req/s  p50 {r['p50_ms']:6.0f}  "
                          f"p95 {r['p95_ms']:6.0f}  p99 {r['p99_ms']:6.0f} ms  ({r['requests']} requests, "
                          f"{r['errors']} errors)", flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
    results = [{"server": name, "concurrency": c, "requests": sum(x["requests"] for x in rs),
                "errors": sum(x["errors"] for x in rs),
                **{k: float(np.median([x[k] for x in rs])) for k in ("rps", "p50_ms", "p95_ms", "p99_ms")}}
               for (name, c), rs in cells.items()]
    print("\n| server | concurrency | requests/s | p50 ms | p95 ms | p99 ms | vs concurrency 1 | requests (errors) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: (r["server"] != "micro-batching", r["concurrency"])):
        base = next(x["rps"] for x in results if x["server"] == r["server"] and x["concurrency"] == levels[0])
        print(f"| {r['server']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['rps'] / base:.2f}x | {r['requests']} ({r['errors']}) |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "settings": vars(a) | {"json": str(a.json)},
                                      "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
