"""What the service refuses, with a one-line JSON error and never a 5xx:
413 body too large (counted while it streams, before any parsing) or batch too large, 415 not multipart or
a part that is not an image, 422 an image that does not decode, is truncated, or has too many pixels."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
from PIL import Image

from vislab.core.data.images import ImageError, fit_image, to_rgb

IMAGE_TYPES_EXTRA = ("application/octet-stream",)
"""Part content types accepted besides image/*: what a client sends for a file of unknown type."""


class RequestError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def check_part_type(content_type: str | None, filename: str) -> None:
    ct = (content_type or "").split(";")[0].strip().lower()
    if not (ct.startswith("image/") or ct in IMAGE_TYPES_EXTRA):
        raise RequestError(415, f"{filename or 'the upload'}: content type {ct or 'missing'!r} is not an image "
                                "(send image/jpeg, image/png, ...)")


def decode(data: bytes, size: tuple[int, int], max_pixels: int, filename: str = "upload") -> np.ndarray:
    """Bytes -> (3, H, W) uint8 at the model's size; RequestError(422) when it is not a readable image."""
    if not data:
        raise RequestError(422, f"{filename}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size  # from the header: nothing is decoded yet
            if w * h > max_pixels:
                raise RequestError(422, f"{filename}: {w}x{h} pixels is more than this service decodes "
                                        f"({max_pixels:,} pixels)")
            if im.format == "JPEG":
                im.draft("RGB", (size[1] * 2, size[0] * 2))
            im.load()
            arr = np.asarray(fit_image(to_rgb(im), size), dtype=np.uint8)
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(422, f"{filename}: refused as a decompression bomb (too many pixels)") from None
    except ImageError as e:
        raise RequestError(422, f"{filename}: {e}") from None
    except Exception as e:  # noqa: BLE001  PIL raises many types on hostile files: all are the client's
        if "truncat" in str(e).lower():
            raise RequestError(422, f"{filename}: the image is truncated (an incomplete file or upload)") from None
        raise RequestError(422, f"{filename}: not a readable image ({type(e).__name__}: {str(e)[:120]})") from None
    return arr.transpose(2, 0, 1)


class BodyLimit:
    """ASGI middleware: refuses a request body over `max_bytes` with 413 (Content-Length up front, else
    counted while streaming), so an endless upload never fills memory or disk; an upload to `upload_prefix`
    that is not multipart/form-data gets 415 before its body is read."""

    def __init__(self, app, max_bytes: int, upload_prefix: str = "/v1/"):
        self.app, self.max_bytes, self.upload_prefix = app, max_bytes, upload_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        ct = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["path"].startswith(self.upload_prefix) and ct != b"multipart/form-data":
            return await _json(send, 415, f"content type {ct.decode('latin-1') or 'missing'!r}: send the image as "
                                          "multipart/form-data (field 'file', or 'files' for a batch)")
        length = headers.get(b"content-length")
        try:
            declared = int(length) if length is not None else None
        except ValueError:
            return await _json(send, 400, "Content-Length is not a number")
        if declared is not None and declared > self.max_bytes:
            return await _json(send, 413, self._too_large())
        chunks, total, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                return await _json(send, 413, self._too_large())
            chunks.append(body)
            more = msg.get("more_body", False)
        data, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}

        return await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body over the limit of {self.max_bytes / 2**20:g} MB"


async def _json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
