"""Fixtures of the product layer: a catalog with broken files, and a running `vislab serve` on a free
loopback port (one per test session, shared by the fuzz and browser tests)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_run) -> Path:
    return tiny_run[0] / "checkpoints" / "best.safetensors"


@pytest.fixture(scope="session")
def catalog(tmp_path_factory, synthetic_root) -> Path:
    """40 product photos in two sub-folders, plus an empty, a text and a truncated file."""
    d = tmp_path_factory.mktemp("catalog")
    src = sorted((synthetic_root / "images").glob("*.jpg"))[:40]
    for i, f in enumerate(src):
        sub = d / ("shirts" if i % 2 else "shoes")
        sub.mkdir(exist_ok=True)
        (sub / f.name).write_bytes(f.read_bytes())
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.png").write_text("not an image")
    raw = src[0].read_bytes()
    (d / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    Image.open(src[1]).convert("RGBA").save(d / "alpha.png")
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, url: str, proc: subprocess.Popen):
        self.url, self.proc = url, proc

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)


def start_server(checkpoint: Path, *flags: str, timeout: float = 120.0) -> Server:
    import httpx
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vislab", "serve", str(checkpoint), "--port", str(port),
                             "--log-level", "warning", *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"vislab serve exited ({proc.returncode}): {proc.stdout.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return Server(url, proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"vislab serve not ready after {timeout} s")


@pytest.fixture(scope="session")
def catalog_index(tiny_ckpt, catalog, tmp_path_factory) -> Path:
    """A similar-products index of the catalog (the readable photos), built with the tiny model."""
    from vislab.core.checkpoint import read_meta
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.index import build_index, model_info
    from vislab.product.inputs import resolve_inputs
    index = build_index(Predictor.load(tiny_ckpt), resolve_inputs([str(catalog)]), workers=0, progress=False,
                        model_info=model_info(tiny_ckpt, read_meta(tiny_ckpt)))
    return index.save(tmp_path_factory.mktemp("index") / "catalog.index")


@pytest.fixture(scope="session")
def live_server(request):
    """`vislab serve` of the tiny model with the catalog's index, or of VISLAB_SERVE_CKPT (a real model: the fuzz
    figures in the docs) with VISLAB_SERVE_INDEX when set."""
    ckpt = os.environ.get("VISLAB_SERVE_CKPT")
    index = os.environ.get("VISLAB_SERVE_INDEX") if ckpt else str(request.getfixturevalue("catalog_index"))
    server = start_server(ckpt or request.getfixturevalue("tiny_ckpt"), *(["--index", index] if index else []))
    yield server
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
