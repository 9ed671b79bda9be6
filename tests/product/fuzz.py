"""Malformed uploads for the fuzz test and benchmark: each case is (name, request kwargs for httpx) with a
seeded generator, so a failing case can be replayed."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose header says w x h pixels (CRC fixed): a decompression-bomb shape."""
    b = io.BytesIO()
    Image.new("L", (8, 8)).save(b, "PNG")
    raw = bytearray(b.getvalue())
    ihdr = 8 + 4  # signature, chunk length
    raw[ihdr + 4: ihdr + 12] = struct.pack(">II", w, h)
    raw[ihdr + 17: ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr: ihdr + 17])) & 0xFFFFFFFF)
    return bytes(raw)


def _multipart(body: bytes, boundary: str = "xyz") -> dict:
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


def cases(jpeg: bytes, png: bytes, n: int, seed: int = 0, big_mb: float = 17) -> list[tuple[str, dict]]:
    """n malformed requests to POST /v1/tag (a few to /v1/tag/batch), drawn from every kind."""
    rng = np.random.default_rng(seed)
    kinds = ["random", "truncated_jpeg", "truncated_png", "zero", "flipped", "huge_png", "bomb_png",
             "wrong_type", "no_type", "broken_multipart", "not_multipart", "bad_boundary", "batch_junk",
             "header_only"]
    out: list[tuple[str, dict]] = []
    for i in range(n):
        k = kinds[i % len(kinds)]
        if k == "random":
            req = {"files": {"file": ("r.jpg", rng.bytes(int(rng.integers(1, 20000))), "image/jpeg")}}
        elif k == "truncated_jpeg":
            req = {"files": {"file": ("t.jpg", jpeg[: int(rng.integers(1, len(jpeg) - 1))], "image/jpeg")}}
        elif k == "truncated_png":
            req = {"files": {"file": ("t.png", png[: int(rng.integers(1, len(png) - 1))], "image/png")}}
        elif k == "zero":
            req = {"files": {"file": ("z.jpg", b"", "image/jpeg")}}
        elif k == "flipped":  # a real JPEG with random bytes overwritten: may still decode (200) or not (422)
            a = bytearray(jpeg)
            for j in rng.integers(2, len(a), size=int(rng.integers(1, 40))):
                a[j] = int(rng.integers(0, 256))
            req = {"files": {"file": ("f.jpg", bytes(a), "image/jpeg")}}
        elif k == "huge_png":
            req = {"files": {"file": ("h.png", _png_claiming(int(rng.integers(7000, 60000)), 7000), "image/png")}}
        elif k == "bomb_png":
            req = {"files": {"file": ("b.png", _png_claiming(100000, 100000), "image/png")}}
        elif k == "wrong_type":
            ct = ["text/plain", "application/json", "application/x-msdownload", "video/mp4", "text/html"][i % 5]
            req = {"files": {"file": ("x.bin", jpeg if i % 2 else rng.bytes(100), ct)}}
        elif k == "no_type":
            req = _multipart(b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
                             + jpeg[:500] + b"\r\n--xyz--\r\n")
        elif k == "broken_multipart":
            body = [b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",  # never closed
                    b"--xyz\r\n\r\n\r\n--xyz--",  # part without headers
                    b"garbage" + rng.bytes(200),
                    b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                    b"Content-Type: image/jpeg\r\n\r\n" + jpeg[:1000]][i % 4]
            req = _multipart(body)
        elif k == "not_multipart":
            ct = ["application/json", "image/jpeg", "text/plain", "application/x-www-form-urlencoded"][i % 4]
            req = {"content": jpeg if ct == "image/jpeg" else b"file=abc", "headers": {"content-type": ct}}
        elif k == "bad_boundary":
            req = {"content": b"--a\r\n\r\n", "headers": {"content-type": ["multipart/form-data",
                                                                            "multipart/form-data; boundary="][i % 2]}}
        elif k == "batch_junk":
            req = {"url": "/v1/tag/batch", "files": [("files", (f"{j}.jpg", rng.bytes(300), "image/jpeg"))
                                                      for j in range(int(rng.integers(1, 6)))]}
        else:  # header_only: a JPEG start-of-image marker and nothing else
            req = {"files": {"file": ("s.jpg", b"\xff\xd8\xff\xe0", "image/jpeg")}}
        out.append((k, req))
    out += [("too_large", {"files": {"file": ("big.jpg", b"\0" * int(big_mb * 2**20), "image/jpeg")}})] * 2
    return out
