"""Image loading: any mode (RGB, grey, palette, alpha, 16-bit, CMYK) to RGB, resized with white
padding to keep the aspect ratio, with a status code and a clear error for missing, empty, corrupt
and oversized files."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from vislab.core.errors import DataError, ImageError  # noqa: F401  (re-exported)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG is an error, never silently grey


OK, MISSING, EMPTY, UNREADABLE, TOO_LARGE = range(5)
STATUS_NAMES = {MISSING: "image file missing", EMPTY: "image file empty",
                UNREADABLE: "image unreadable (corrupt, truncated or not an image)",
                TOO_LARGE: "image over PIL's decompression-bomb limit"}


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, ...) -> RGB; transparency composited on white."""
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    if im.mode.startswith("I;16"):  # fixed 16-bit range: a white 16-bit image stays white
        arr = np.asarray(im, dtype=np.float32) / 257.0
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "I":  # 32-bit, range unknown: stretch
        arr = np.asarray(im, dtype=np.float32)
        arr = (255 * (arr - arr.min()) / max(float(np.ptp(arr)), 1.0)).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return im.convert("RGB")


def fit_image(im: Image.Image, size: tuple[int, int], fill=(255, 255, 255)) -> Image.Image:
    """Resize to (height, width), padding with `fill` to keep the aspect ratio."""
    h, w = size
    iw, ih = im.size
    target_ratio, ratio = w / h, iw / ih
    if abs(ratio - target_ratio) > 0.01:
        if ratio > target_ratio:  # too wide: pad height
            nh = round(iw / target_ratio)
            canvas = Image.new("RGB", (iw, nh), fill)
            canvas.paste(im, (0, (nh - ih) // 2))
        else:
            nw = round(ih * target_ratio)
            canvas = Image.new("RGB", (nw, ih), fill)
            canvas.paste(im, ((nw - iw) // 2, 0))
        im = canvas
    if im.size != (w, h):
        im = im.resize((w, h), Image.BILINEAR, reducing_gap=3.0)
    return im


def load_image(src: str | Path | bytes | Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Decode one image to a (H, W, 3) uint8 array. Raises ImageError with a clear message."""
    name = "<image>" if isinstance(src, (bytes, Image.Image)) else str(src)
    try:
        if not isinstance(src, (bytes, Image.Image)):
            p = Path(src)
            if not p.is_file():
                raise ImageError(f"{name}: file does not exist")
            if p.stat().st_size == 0:
                raise ImageError(f"{name}: file is empty")
        with warnings.catch_warnings():  # Image.open warns (MAX..2*MAX pixels): an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(src, Image.Image):
                im = src
            else:
                im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
            if im.format == "JPEG":  # decode at reduced scale when the file is much larger
                im.draft("RGB", (size[1] * 2, size[0] * 2))
            im.load()
        return np.asarray(fit_image(to_rgb(im), size), dtype=np.uint8)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused, larger than PIL's decompression-bomb limit "
                         f"({Image.MAX_IMAGE_PIXELS:,} pixels): {e}. If you trust the file, raise "
                         f"PIL.Image.MAX_IMAGE_PIXELS.") from None
    except Exception as e:  # PIL raises OSError/SyntaxError/ValueError on corrupt files
        raise ImageError(f"{name}: cannot be decoded as an image ({type(e).__name__}: {e})") from None


