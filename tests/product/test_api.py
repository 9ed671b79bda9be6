"""The HTTP API in-process (FastAPI's TestClient): every endpoint, every refusal with its status and a
one-line JSON error, micro-batched answers equal to the predictor's, and /readyz before the model is up."""
from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from PIL import Image

from vislab.labs.fashion.predict import Predictor
from vislab.product.serve.batcher import MicroBatcher
from vislab.product.serve.settings import ServeSettings


def _client(ckpt, **settings):
    from fastapi.testclient import TestClient

    from vislab.product.serve.app import create_app
    return TestClient(create_app(ckpt, ServeSettings(**settings)))


def _ready(c):
    t0 = time.monotonic()
    while c.get("/readyz").status_code != 200:
        assert time.monotonic() - t0 < 60, c.get("/readyz").json()
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(tiny_ckpt):
    with _client(tiny_ckpt, max_body_mb=1, max_batch=4, max_pixels=2_000_000) as c:
        _ready(c)
        yield c


@pytest.fixture(scope="module")
def photos(catalog) -> list:
    return sorted((catalog / "shirts").glob("*.jpg"))[:6]


def test_tag_equals_the_predictor(client, tiny_ckpt, photos):
    p = Predictor.load(tiny_ckpt)
    for f in photos[:3]:
        r = client.post("/v1/tag", files={"file": (f.name, f.read_bytes(), "image/jpeg")})
        assert r.status_code == 200, r.text
        got, want = r.json(), p.predict(f)
        assert got["filename"] == f.name and got["caption"] == want.caption
        assert list(got["attributes"]) == p.tasks
        for t, a in got["attributes"].items():
            assert a["label"] == want.labels[t] and a["confidence"] == pytest.approx(want.confidences[t], abs=1e-4)
            assert [k["label"] for k in a["top_k"]] == [lab for lab, _ in want.top_k[t]]
            assert a["needs_review"] == (t in want.review)
        assert got["review"] == want.review and got["needs_review"] == want.needs_review


def test_batch_keeps_order_and_reports_bad_items(client, photos):
    files = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in photos[:3]]
    files.insert(1, ("files", ("broken.jpg", photos[0].read_bytes()[:300], "image/jpeg")))
    r = client.post("/v1/tag/batch", files=files)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["filename"] for x in res] == [photos[0].name, "broken.jpg", photos[1].name, photos[2].name]
    assert res[1]["status"] == 422 and "truncated" in res[1]["error"]
    single = client.post("/v1/tag", files={"file": (photos[2].name, photos[2].read_bytes(), "image/jpeg")}).json()
    assert res[3]["caption"] == single["caption"] and res[3]["review"] == single["review"]
    for t, a in single["attributes"].items():  # batched with others or alone: the same answer
        assert res[3]["attributes"][t]["label"] == a["label"]
        assert res[3]["attributes"][t]["confidence"] == pytest.approx(a["confidence"], abs=2e-4)


def _png(w, h) -> bytes:
    b = io.BytesIO()
    Image.new("L", (w, h)).save(b, "PNG")
    return b.getvalue()


@pytest.mark.parametrize("case,status,text", [
    ("text part", 415, "is not an image"),
    ("json body", 415, "multipart/form-data"),
    ("no file field", 422, "file: Field required"),
    ("empty file", 422, "empty"),
    ("random bytes", 422, "not a readable image"),
    ("truncated", 422, "the image is truncated"),
    ("too many pixels", 422, "more than this service decodes"),
    ("too large", 413, "over the limit of 1 MB"),
    ("batch too large", 413, "the limit is 4"),
])
def test_refusals(client, photos, case, status, text):
    jpg = photos[0].read_bytes()
    req = {"text part": dict(files={"file": ("a.txt", b"hello", "text/plain")}),
           "json body": dict(json={"image": "x"}),
           "no file field": dict(files={"other": ("a.jpg", jpg, "image/jpeg")}),
           "empty file": dict(files={"file": ("a.jpg", b"", "image/jpeg")}),
           "random bytes": dict(files={"file": ("a.jpg", np.random.default_rng(0).bytes(5000), "image/jpeg")}),
           "truncated": dict(files={"file": ("a.jpg", jpg[: len(jpg) // 2], "image/jpeg")}),
           "too many pixels": dict(files={"file": ("huge.png", _png(2000, 1500), "image/png")}),
           "too large": dict(files={"file": ("big.jpg", b"\xff" * (2 * 2**20), "image/jpeg")}),
           "batch too large": dict(files=[("files", ("a.jpg", jpg, "image/jpeg"))] * 5)}[case]
    r = client.post("/v1/tag/batch" if case == "batch too large" else "/v1/tag", **req)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and text in detail and "\n" not in detail


def test_model_info_health_docs_and_page(client, tiny_ckpt):
    from vislab.core.checkpoint import read_meta
    meta = read_meta(tiny_ckpt)
    m = client.get("/v1/model").json()
    assert m["tasks"] == meta["encoders"] and m["backbone"] == "test_efficientnet"
    assert m["thresholds"] == pytest.approx(meta["review"]["thresholds"]) and m["review_precision"] == 0.98
    assert m["metrics"]["split"] == "test" and 0 <= m["metrics"]["gender"]["accuracy"] <= 1
    assert m["limits"] == {"max_body_bytes": 2**20, "max_batch": 4, "max_pixels": 2_000_000, "micro_batch": True}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/v1/tag/batch" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="files"' in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200


def test_readyz_is_503_until_the_model_is_loaded(tiny_ckpt, monkeypatch):
    from vislab.product.serve import app as app_mod
    gate = __import__("threading").Event()
    load = app_mod.Model.load
    monkeypatch.setattr(app_mod.Model, "load", lambda self: (gate.wait(30), load(self)))
    with _client(tiny_ckpt) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["detail"] == "loading"
        jpg = io.BytesIO()
        Image.new("RGB", (30, 40), "red").save(jpg, "JPEG")
        r = c.post("/v1/tag", files={"file": ("a.jpg", jpg.getvalue(), "image/jpeg")})
        assert r.status_code == 503 and "loading" in r.json()["detail"]
        gate.set()
        _ready(c)


def test_micro_batching_merges_concurrent_requests(tiny_ckpt, photos):
    """Concurrent submissions run as fewer forward passes and give the same answers as one at a time."""
    from concurrent.futures import ThreadPoolExecutor
    p = Predictor.load(tiny_ckpt)
    x = p.preprocess(photos).numpy()

    async def go(enabled):
        b = MicroBatcher(p.predict_arrays, ThreadPoolExecutor(1), max_batch=32, wait_ms=20, enabled=enabled)
        b.start()
        res = await asyncio.gather(*(b.submit([im]) for im in x))
        await b.stop()
        return [r[0] for r in res], b.batches

    batched, n_batched = asyncio.run(go(True))
    single, n_single = asyncio.run(go(False))
    assert n_single == len(x) and n_batched < len(x)
    for a, b in zip(batched, single):
        assert a.labels == b.labels and a.confidences == pytest.approx(b.confidences, abs=1e-5)
