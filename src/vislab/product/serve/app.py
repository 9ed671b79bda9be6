"""The FastAPI app: `create_app(checkpoint, settings)`.

    GET  /             the web page          GET /healthz  alive
    POST /v1/tag       one image             GET /readyz   200 once the model is loaded and warmed up
    POST /v1/tag/batch up to max_batch       GET /v1/model lab, backbone, classes, thresholds, metrics
    POST /v1/similar   the most similar catalog products (with --index), GET /v1/catalog/{row}/image
    GET  /docs         OpenAPI

The model loads in a background thread when the app starts, so /healthz answers at once and /readyz
says 503 until the first (warm-up) batch has run. Decoding runs on a small thread pool, inference on one
thread with torch's intra-op threads set to the cores; neither blocks the event loop."""
from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from vislab import __version__
from vislab.core import checkpoint as ckpt
from vislab.labs.fashion.review import resolve as resolve_thresholds
from vislab.product.serve.batcher import MicroBatcher
from vislab.product.serve.limits import BodyLimit, RequestError, check_part_type, decode
from vislab.product.serve.schemas import BatchTags, ItemError, ModelInfo, Problem, Similar, Tags
from vislab.product.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
ERRORS = {413: {"model": Problem}, 415: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Model:
    """The predictor, loaded in the background; `ready` once a warm-up batch has run."""

    def __init__(self, path: Path, settings: ServeSettings):
        from vislab.product.backends import model_meta, model_tta
        self.path, self.settings = path, settings
        self.meta = model_meta(path)[1]
        self.tta = model_tta(self.meta) if settings.tta is None else settings.tta
        self.image_size = tuple(self.meta["image_size"])
        self.predictor = None
        self.index = None
        self.ready = threading.Event()
        self.failed: str | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="vislab-infer")
        self.decoders = ThreadPoolExecutor(min(4, _cores()), thread_name_prefix="vislab-decode")

    def load(self) -> None:
        try:
            import torch

            from vislab.product.backends import load_predictor
            torch.set_num_threads(self.settings.threads or _cores())
            kw = {"threads": self.settings.threads or _cores()} if self.onnx else {}
            self.predictor = load_predictor(self.path, self.settings.backend,
                                            thresholds=self.settings.thresholds or None,
                                            top_k=self.settings.top_k, precision=self.settings.precision,
                                            tta=self.tta, **kw)
            if self.settings.index:
                from vislab.product.index import CatalogIndex
                self.index = CatalogIndex.load(self.settings.index)
            blank = np.full((min(4, self.settings.batch_size), 3, *self.image_size), 255, np.uint8)
            for n in (1, len(blank)):  # warm-up: the first batches of a size are slow
                self.predict(blank[:n])
            self.ready.set()
        except Exception as e:  # noqa: BLE001  /readyz reports it; the process stays up to say so
            self.failed = f"{type(e).__name__}: {e}"

    @property
    def onnx(self) -> bool:
        return self.settings.backend == "onnx" or self.path.suffix.lower() == ".onnx"

    def predict(self, x: np.ndarray) -> list:
        """[(prediction, embedding in the index's space or None)] per image: with an index, one forward pass
        gives both."""
        if self.index is None:
            return [(p, None) for p in self.predictor.predict_arrays(x)]
        feats, preds = self.predictor.embed_arrays(x)
        return list(zip(preds, self.index.project(feats)))


def create_app(checkpoint: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    path = Path(checkpoint) if str(checkpoint).lower().endswith(".onnx") else ckpt.resolve(checkpoint)[0]
    model = Model(path, settings)
    batcher = MicroBatcher(model.predict, model.executor, settings.batch_size, settings.batch_wait_ms,
                           settings.micro_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=model.load, name="vislab-load", daemon=True).start()
        batcher.start()
        yield
        await batcher.stop()
        model.executor.shutdown(wait=False, cancel_futures=True)
        model.decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="vislab tagging service", version=__version__, lifespan=lifespan,
                  description="Fashion attributes of product photos: label, confidence, top-k and a "
                              "needs-review flag per attribute, and a caption.")
    app.state.model, app.state.batcher, app.state.settings = model, batcher, settings

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, e: RequestError):
        return JSONResponse({"detail": e.detail}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):  # one line, like every other error
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
                 for err in e.errors()[:3]]
        return JSONResponse({"detail": "; ".join(parts) + " (send multipart/form-data with the image in "
                                       "field 'file', or 'files' for a batch)"}, status_code=422)

    def require_ready() -> None:
        if not model.ready.is_set():
            raise RequestError(503, f"the model is not ready ({model.failed})" if model.failed
                               else "the model is loading; retry in a few seconds")

    async def decode_upload(f: UploadFile) -> np.ndarray:
        name = f.filename or "upload"
        check_part_type(f.content_type, name)
        data = await f.read()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(model.decoders, decode, data, model.image_size, settings.max_pixels, name)

    def tags(pred, filename: str) -> dict:
        d = pred.as_dict()
        d.pop("image", None)
        return {"filename": filename, **d}

    @app.get("/healthz", summary="Alive")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready: model loaded and warmed up (503 until then)",
             responses={503: {"model": Problem}})
    async def readyz():
        if model.ready.is_set():
            return {"status": "ready"}
        return JSONResponse({"detail": model.failed or "loading"}, status_code=503)

    @app.get("/v1/model", response_model=ModelInfo, summary="The model: lab, backbone, classes, thresholds")
    async def model_info() -> dict:
        meta = model.meta
        thresholds = (model.predictor.thresholds if model.predictor is not None
                      else resolve_thresholds(meta, settings.thresholds or None, 0.6))
        return {"lab": meta["lab"], "backbone": meta["backbone"], "checkpoint": path.name,
                "image_size": list(meta["image_size"]), "tasks": meta["encoders"], "thresholds": thresholds,
                "review_precision": (meta.get("review") or {}).get("precision_target"),
                "metrics": _run_metrics(path, meta), "version": {"vislab": __version__, **meta.get("versions", {})},
                "limits": {"max_body_bytes": int(settings.max_body_mb * 2**20), "max_batch": settings.max_batch,
                           "max_pixels": settings.max_pixels, "micro_batch": settings.micro_batch},
                "precision": settings.precision, "backend": "onnx" if model.onnx else "torch", "tta": model.tta,
                "similar": None if model.index is None else {"items": len(model.index),
                                                             "dim": int(model.index.embeddings.shape[1])}}

    @app.post("/v1/tag", response_model=Tags, responses=ERRORS, summary="Tag one image")
    async def tag_one(file: UploadFile = File(..., description="A product photo (JPEG, PNG, WebP, ...)")):
        require_ready()
        x = await decode_upload(file)
        ((pred, _),) = await batcher.submit([x])
        return tags(pred, file.filename or "upload")

    @app.post("/v1/tag/batch", response_model=BatchTags, responses=ERRORS, summary="Tag several images")
    async def tag_batch(files: list[UploadFile] = File(..., description="Up to max_batch product photos")):
        require_ready()
        if len(files) > settings.max_batch:
            raise RequestError(413, f"{len(files)} files in one request; the limit is {settings.max_batch}")
        decoded: list = await asyncio.gather(*(decode_upload(f) for f in files), return_exceptions=True)
        for d in decoded:  # a part that is not an image at all refuses the request; a bad image is one item
            if isinstance(d, RequestError) and d.status == 415:
                raise d
            if isinstance(d, BaseException) and not isinstance(d, RequestError):
                raise d
        ok = [d for d in decoded if not isinstance(d, BaseException)]
        preds = iter(await batcher.submit(ok))
        results = [ItemError(filename=f.filename or "upload", status=d.status, error=d.detail).model_dump()
                   if isinstance(d, RequestError) else tags(next(preds)[0], f.filename or "upload")
                   for f, d in zip(files, decoded)]
        return {"results": results}

    @app.post("/v1/similar", response_model=Similar, responses=ERRORS | {404: {"model": Problem}},
              summary="The most similar catalog products to one image (needs --index)")
    async def similar(file: UploadFile = File(..., description="A product photo"),
                      k: int = Query(10, ge=1, le=100, description="How many products")):
        require_ready()
        if model.index is None:
            raise RequestError(404, "this service runs without a catalog index: start it with "
                                    "`vislab serve MODEL --index catalog.index`")
        x = await decode_upload(file)
        ((pred, emb),) = await batcher.submit([x])
        (hits,) = model.index.search(emb[None], k)
        return {"filename": file.filename or "upload", "tags": tags(pred, file.filename or "upload"),
                "matches": [{"rank": h.rank, "id": h.id, "score": h.score, "labels": h.labels,
                             "image": f"/v1/catalog/{h.row}/image"} for h in hits]}

    @app.get("/v1/catalog/{row}/image", summary="A catalog image of the index", responses={404: {"model": Problem}})
    async def catalog_image(row: int):
        if model.index is None or not 0 <= row < len(model.index):
            raise RequestError(404, f"no catalog item {row}")
        f = Path(model.index.paths[row])
        if not f.is_file():
            raise RequestError(404, f"the image of catalog item {row} ({model.index.ids[row]}) is not on this "
                                    "machine any more")
        return FileResponse(f)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 2**20))
    return app


def _run_metrics(path: Path, meta: dict) -> dict:
    """Accuracy and macro F1 per attribute from the run's metrics.json (beside checkpoints/), when there; for an
    ensemble, the scores its file holds (the test split's when it was scored, else the validation split's)."""
    if "ensemble" in meta:
        scores = meta["ensemble"].get("scores") or {}
        split = "test" if "test" in scores else "val"
        m = scores.get(split) or {}
        return {"split": split, "n": m.get("n"), **{t: {k: v[k] / 100 for k in ("accuracy", "f1")}
                                                    for t, v in (m.get("ensemble") or {}).items()}} if m else {}
    f = path.parent.parent / "metrics.json"
    try:
        m = json.loads(f.read_text())
    except (OSError, ValueError):
        return {}
    return {"split": m.get("split"), "n": m.get("n"),
            **{t: {k: v.get(k) for k in ("accuracy", "f1")} for t, v in (m.get("metrics") or {}).items()
               if isinstance(v, dict)}}
