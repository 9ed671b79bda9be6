"""Tests of vislab.core.data and transforms: CSV reading, image decoding + cache, splits, batches."""
from __future__ import annotations

import io
import os
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch
from PIL import Image

from vislab.core.data import cache as data
from vislab.core.data.cache import _status_of, decode_images
from vislab.core.data.csv import read_csv, require_columns
from vislab.core.data.images import (
    EMPTY,
    MISSING,
    OK,
    TOO_LARGE,
    UNREADABLE,
    DataError,
    ImageError,
    fit_image,
    load_image,
    to_rgb,
)
from vislab.core.data.loaders import ArrayDataset, batch_loader
from vislab.core.data.splits import stratified_split
from vislab.core.transforms import BatchTransform


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """Every test gets its own decoded-image cache; ~/.cache is never touched."""
    monkeypatch.setenv("VISLAB_CACHE", str(tmp_path / "vislab-cache"))


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _jpeg(im: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# --------------------------------------------------------------------------- CSV

HEADER = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
KAGGLE_LINES = [
    HEADER,                                                                                         # line 1
    "1000,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt",  # 2
    "1001,Men,Personal Care,Fragrance,Perfume and Body Mist,Black,Spring,2017,Casual,"
    "Boss Men Perfume, After Shave Balm and Shower Gel Set",                                        # 3: 1 extra comma
    "1002,Women,Apparel,Topwear,Tops,Red,Summer,2012,NA,Vero Moda Women Red Top",                   # 4: usage NA
    "1003,Women,Accessories,Bags,Handbags,Brown,,2013,Casual,"
    "Lino Perros Women Brown Handbag, Tote, Leather",                                               # 5: 2 extra
    "1004,Men,Apparel,Topwear",                                                                     # 6: too few fields
    "",                                                                                             # 7: blank, skipped
    "1005,Men,Footwear,Shoes,Casual Shoes,White,Winter,2016,Casual,Puma Men White Shoes",           # 8
]


@pytest.fixture
def kaggle_csv(tmp_path):
    p = tmp_path / "styles.csv"
    p.write_text("\n".join(KAGGLE_LINES) + "\n", encoding="utf-8")
    return p


def test_fixture_is_the_hard_form_for_pandas(kaggle_csv):
    with pytest.raises(pd.errors.ParserError, match="Expected 10 fields"):
        pd.read_csv(kaggle_csv)


def test_read_csv_rejoins_unquoted_commas(kaggle_csv):
    df, rep = read_csv(kaggle_csv)
    assert list(df.columns) == HEADER.split(",")
    assert df["id"].tolist() == ["1000", "1001", "1002", "1003", "1005"]
    assert rep.rows == 5
    assert rep.repaired == [3, 5]
    assert rep.malformed == [6]
    names = df.set_index("id")["productDisplayName"]
    assert names["1001"] == "Boss Men Perfume, After Shave Balm and Shower Gel Set"
    assert names["1003"] == "Lino Perros Women Brown Handbag, Tote, Leather"
    assert names["1000"] == "Turtle Check Men Navy Blue Shirt"
    r1001 = df.set_index("id").loc["1001"]
    assert r1001.tolist() == ["Men", "Personal Care", "Fragrance", "Perfume and Body Mist", "Black", "Spring",
                              "2017", "Casual", "Boss Men Perfume, After Shave Balm and Shower Gel Set"]
    r1003 = df.set_index("id").loc["1003"]
    assert ((r1003["articleType"], r1003["baseColour"], r1003["year"], r1003["usage"])
            == ("Handbags", "Brown", "2013", "Casual"))
    # NA marker and empty field become missing; everything else stays a string
    assert pd.isna(df.set_index("id").loc["1002", "usage"])
    assert pd.isna(r1003["season"])
    assert int(df.isna().sum().sum()) == 2


def test_read_csv_text_col_in_the_middle(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,name,colour\n1,plain,Red\n2,Shirt, Slim Fit,Blue\n3,a,b,c,Green\n")
    df, rep = read_csv(p, text_col="name")
    assert df["name"].tolist() == ["plain", "Shirt, Slim Fit", "a,b,c"]
    assert df["colour"].tolist() == ["Red", "Blue", "Green"]
    assert rep.repaired == [3, 4] and rep.malformed == []


def test_read_csv_missing_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_csv(tmp_path / "empty.csv")


def test_require_columns_lists_columns_present():
    df = pd.DataFrame({"id": [1], "gender": ["Men"]})
    require_columns(df, ["id", "gender"])  # no error
    with pytest.raises(DataError) as e:
        require_columns(df, ["gender", "articleType", "season"])
    msg = str(e.value)
    assert "['articleType', 'season']" in msg
    assert "columns present: ['id', 'gender']" in msg


# --------------------------------------------------------------------------- images


def test_to_rgb_modes():
    # L
    assert np.asarray(to_rgb(Image.new("L", (3, 2), 77))).tolist() == [[[77] * 3] * 3] * 2
    # LA: transparent -> white, opaque kept
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (0, 0))
    la.putpixel((1, 0), (50, 255))
    assert np.asarray(to_rgb(la)).tolist() == [[[255, 255, 255], [50, 50, 50]]]
    # RGBA: transparent red -> white, opaque blue kept, half-transparent black -> mid grey
    rgba = Image.new("RGBA", (3, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 255, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    out = np.asarray(to_rgb(rgba)).astype(int)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 255]
    assert np.abs(out[0, 2] - 127).max() <= 1
    # P (palette) without transparency
    p = Image.new("P", (2, 1))
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    p.putpixel((0, 0), 1)
    assert np.asarray(to_rgb(p)).tolist() == [[[10, 200, 30], [0, 0, 0]]]
    # P with transparency (index 0 transparent), through a real PNG
    p2 = Image.open(io.BytesIO(_png_with_transparency(p)))
    assert p2.mode == "P" and "transparency" in p2.info
    assert np.asarray(to_rgb(p2)).tolist() == [[[10, 200, 30], [255, 255, 255]]]
    # CMYK
    assert np.asarray(to_rgb(Image.new("CMYK", (1, 1), (0, 255, 255, 0)))).tolist() == [[[255, 0, 0]]]
    # RGB is returned as is
    rgb = Image.new("RGB", (1, 1))
    assert to_rgb(rgb) is rgb


def _png_with_transparency(p: Image.Image) -> bytes:
    buf = io.BytesIO()
    p.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def test_to_rgb_16_bit_keeps_absolute_brightness():
    white = Image.new("I;16", (4, 2))
    white.putdata([65535] * 8)
    assert np.asarray(to_rgb(white)).min() == 255  # a white 16-bit image stays white (not stretched to black)
    grey = Image.fromarray(np.full((2, 4), 257 * 100, dtype=np.uint16))
    assert grey.mode == "I;16"
    assert np.unique(np.asarray(to_rgb(grey))).tolist() == [100]
    ramp = np.array([[0, 257 * 50, 257 * 200, 65535]], dtype=np.uint16)
    arr = load_image(_png(Image.fromarray(ramp)), (1, 4))  # 16-bit PNG -> I;16 on open
    assert arr.shape == (1, 4, 3) and arr[0, :, 0].tolist() == [0, 50, 200, 255]
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_load_image_formats_and_sources(tmp_path):
    im = Image.new("RGB", (24, 32), (20, 140, 220))
    im.paste((250, 250, 10), (0, 0, 12, 16))
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    png.write_bytes(_png(im))
    jpg.write_bytes(_jpeg(im))
    ref = np.asarray(im)
    for src in (png, str(png), png.read_bytes(), im, Image.open(png)):
        out = load_image(src, (32, 24))
        assert out.dtype == np.uint8 and out.shape == (32, 24, 3)
        assert np.array_equal(out, ref)
    out = load_image(jpg, (32, 24))
    assert out.shape == (32, 24, 3) and out.dtype == np.uint8
    assert np.median(np.abs(out.astype(int) - ref)) <= 2  # lossy, chroma-subsampled edges
    assert np.abs(out[4, 4].astype(int) - [250, 250, 10]).max() <= 6
    assert np.abs(out[24, 18].astype(int) - [20, 140, 220]).max() <= 6
    assert np.abs(load_image(jpg.read_bytes(), (32, 24)).astype(int) - out).max() == 0
    # a requested (height, width) that differs from the source
    for h, w in [(16, 12), (20, 40), (9, 7)]:
        assert load_image(png, (h, w)).shape == (h, w, 3)
        assert load_image(jpg, (h, w)).shape == (h, w, 3)
    # CMYK JPEG, RGBA PNG, L JPEG
    cmyk = load_image(_jpeg(Image.new("CMYK", (16, 16), (0, 255, 255, 0))), (16, 16)).astype(int)
    assert np.abs(cmyk - [255, 0, 0]).max() <= 3
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(_png(rgba), (8, 8)).min() == 255
    grey = load_image(_jpeg(Image.new("L", (16, 16), 90)), (8, 8)).astype(int)
    assert np.abs(grey - 90).max() <= 2


def test_fit_image_pads_white_and_keeps_aspect():
    wide = Image.new("RGB", (100, 50), (255, 0, 0))
    out = np.asarray(fit_image(wide, (64, 64)))
    assert out.shape == (64, 64, 3)
    assert (out[32] == [255, 0, 0]).all()                # middle row red across the full width
    assert (out[18:46] == [255, 0, 0]).all()             # the red band is 50/100 of the height
    assert (out[:14] == 255).all() and (out[50:] == 255).all()  # white padding top and bottom
    tall = Image.new("RGB", (50, 100), (0, 0, 255))
    out = np.asarray(fit_image(tall, (64, 64)))
    assert (out[:, 32] == [0, 0, 255]).all()
    assert (out[:, :14] == 255).all() and (out[:, 50:] == 255).all()
    # same aspect: plain resize, no padding
    out = np.asarray(fit_image(Image.new("RGB", (60, 80), (0, 255, 0)), (40, 30)))
    assert out.shape == (40, 30, 3) and (out == [0, 255, 0]).all()


def test_load_image_bad_files(tmp_path):
    with pytest.raises(ImageError, match="file does not exist"):
        load_image(tmp_path / "missing.jpg", (16, 16))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="file is empty"):
        load_image(tmp_path / "empty.jpg", (16, 16))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = _jpeg(noise)
    (tmp_path / "half.jpg").write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageError, match=r"half\.jpg: cannot be decoded as an image.*truncated"):
        load_image(tmp_path / "half.jpg", (16, 16))
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    with pytest.raises(ImageError, match=r"text\.jpg: cannot be decoded as an image.*cannot identify"):
        load_image(tmp_path / "text.jpg", (16, 16))
    assert load_image(full, (16, 16)).shape == (16, 16, 3)  # the uncut file is fine


@pytest.mark.parametrize("limit", [1000, 6000])  # 10000 px: > 2x limit (PIL error), 1x..2x limit (PIL warning)
def test_decompression_bomb_is_an_image_error(tmp_path, monkeypatch, limit):
    p = tmp_path / "big.png"
    p.write_bytes(_png(Image.new("RGB", (100, 100), (0, 128, 0))))
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match="decompression-bomb limit") as e:
            load_image(p, (16, 16))
    assert f"{limit:,} pixels" in str(e.value) and "MAX_IMAGE_PIXELS" in str(e.value)
    assert not [w for w in caught if issubclass(w.category, PIL.Image.DecompressionBombWarning)]
    assert _status_of(e.value) == TOO_LARGE


# --------------------------------------------------------------------------- decode + cache


@pytest.fixture
def image_set(tmp_path):
    """3 good images (PNG, JPEG, RGBA PNG) + missing, empty and a text file named .jpg."""
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (20, 30), (200, 10, 10)).save(d / "a.png")
    Image.new("RGB", (30, 20), (10, 200, 10)).save(d / "b.jpg", quality=95)
    Image.new("RGBA", (10, 10), (10, 10, 200, 255)).save(d / "c.png")
    (d / "e.jpg").write_bytes(b"")
    (d / "t.jpg").write_text("not an image")
    return [d / "a.png", d / "b.jpg", d / "c.png", d / "missing.jpg", d / "e.jpg", d / "t.jpg"]


def test_decode_images_status_and_pixels(image_set, tmp_path):
    arr, status, f = decode_images(image_set, (12, 10), cache_dir=str(tmp_path / "c"), workers=1, progress=False)
    assert arr.shape == (6, 3, 12, 10) and arr.dtype == np.uint8
    assert status.tolist() == [OK, OK, OK, MISSING, EMPTY, UNREADABLE]
    for i in range(3):
        assert np.array_equal(arr[i], load_image(image_set[i], (12, 10)).transpose(2, 0, 1))
    assert (arr[3:] == 0).all()
    assert arr[0, 0, 6, 5] == 200 and arr[0, 1, 6, 5] == 10  # red product in the middle
    assert f.parent == tmp_path / "c" / "images" and f.is_file()
    assert not list(f.parent.glob("*tmp*"))  # temporary files renamed away


def test_decode_images_cache_hit_and_key(image_set, tmp_path, monkeypatch):
    cache = str(tmp_path / "c")
    arr1, st1, f1 = decode_images(image_set, (12, 10), cache_dir=cache, workers=1, progress=False)
    calls = Counter()
    real = data.load_image

    def counting(src, size):
        calls[size] += 1
        return real(src, size)

    monkeypatch.setattr(data, "load_image", counting)
    arr2, st2, f2 = decode_images(image_set, (12, 10), cache_dir=cache, workers=1, progress=False)
    assert sum(calls.values()) == 0  # served from the cache
    assert f2 == f1 and np.array_equal(arr1, arr2) and np.array_equal(st1, st2)

    arr3, _, f3 = decode_images(image_set, (16, 8), cache_dir=cache, workers=1, progress=False)
    assert calls[(16, 8)] == 6 and f3 != f1 and arr3.shape == (6, 3, 16, 8)

    st = os.stat(image_set[0])
    os.utime(image_set[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    _, _, f4 = decode_images(image_set, (12, 10), cache_dir=cache, workers=1, progress=False)
    assert calls[(12, 10)] == 6 and f4 not in (f1, f3)
    # a different file list is another key too
    _, _, f5 = decode_images(image_set[:3], (12, 10), cache_dir=cache, workers=1, progress=False)
    assert calls[(12, 10)] == 9 and f5 not in (f1, f3, f4)
    assert len(list((tmp_path / "c" / "images").glob("*.status.npy"))) == 4


def test_decode_images_process_pool_matches_serial(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(300):
        p = d / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    paths[7].unlink()
    paths[250].write_text("garbage")
    a2, s2, f2 = decode_images(paths, (8, 8), cache_dir=str(tmp_path / "pool"), workers=2, progress=False)
    a1, s1, f1 = decode_images(paths, (8, 8), cache_dir=str(tmp_path / "serial"), workers=1, progress=False)
    assert f1.name == f2.name  # same key, different folders
    assert np.array_equal(np.asarray(a1), np.asarray(a2)) and np.array_equal(s1, s2)
    assert s2[7] == MISSING and s2[250] == UNREADABLE and (np.delete(s2, [7, 250]) == OK).all()
    assert np.array_equal(a2[299], np.asarray(Image.open(paths[299])).transpose(2, 0, 1))


# --------------------------------------------------------------------------- cleaning


# --------------------------------------------------------------------------- encoding + split


def _check_partition(s, n):
    allidx = np.concatenate([s["train"], s["val"], s["test"]])
    assert len(allidx) == n and sorted(allidx.tolist()) == list(range(n))  # disjoint + covering


def test_stratified_split_fractions_and_strata():
    strata = ["A"] * 40 + ["B"] * 30 + ["C"] * 20 + ["D"] * 10
    s = stratified_split(strata, (0.70, 0.15, 0.15), seed=0)
    _check_partition(s, 100)
    assert abs(len(s["train"]) - 70) <= 1 and abs(len(s["val"]) - 15) <= 1 and abs(len(s["test"]) - 15) <= 1
    lab = np.array(strata)
    tr = Counter(lab[s["train"]])
    for c, n in Counter(strata).items():
        assert abs(tr[c] / n - 0.70) <= 0.1, (c, tr[c], n)
        assert Counter(lab[s["val"]])[c] >= 1 and Counter(lab[s["test"]])[c] >= 1
    again = stratified_split(strata, (0.70, 0.15, 0.15), seed=0)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    other = stratified_split(strata, (0.70, 0.15, 0.15), seed=1)
    assert not np.array_equal(s["train"], other["train"])
    two = stratified_split(strata, (0.8, 0.2, 0.0), seed=0)
    _check_partition(two, 100)
    assert len(two["test"]) == 0 and abs(len(two["val"]) - 20) <= 1


def test_stratified_split_small_class_fallbacks():
    # classes of 1-3 members are pooled into one "rare" stratum (7 members >= ceil(1/0.15))
    strata = ["A"] * 20 + ["B"] * 15 + ["C"] * 3 + ["D"] * 2 + ["E"] + ["F"]
    s = stratified_split(strata, (0.70, 0.15, 0.15), seed=0)
    _check_partition(s, len(strata))
    # a rare pool smaller than needed goes to train whole
    strata = ["A"] * 30 + ["B"] * 30 + ["C"] * 2 + ["D"]
    s = stratified_split(strata, (0.70, 0.15, 0.15), seed=0)
    _check_partition(s, 63)
    assert {60, 61, 62} <= set(s["train"].tolist())
    lab = np.array(strata)
    assert set(lab[s["val"]]) == {"A", "B"} and set(lab[s["test"]]) == {"A", "B"}


# --------------------------------------------------------------------------- prepare


# --------------------------------------------------------------------------- batches

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_batch_transform_eval_is_exact_normalisation():
    x = torch.randint(0, 256, (4, 3, 16, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    expected = (x.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    for augment in (False, True):
        bt = BatchTransform(MEAN, STD, augment=augment).eval()
        out = bt(x)
        assert out.dtype == torch.float32 and out.shape == x.shape
        assert torch.equal(out, expected)
    bt = BatchTransform(MEAN, STD, augment=False).train()  # no augment: train == eval
    assert torch.equal(bt(x), expected)


def test_batch_transform_augment_deterministic_and_different():
    x = torch.randint(0, 256, (8, 3, 16, 12), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    bt = BatchTransform(MEAN, STD, augment=True).train()
    a = bt(x, torch.Generator().manual_seed(5))
    b = bt(x, torch.Generator().manual_seed(5))
    c = bt(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert (a - bt.eval()(x)).abs().mean() > 0.05


def test_batch_transform_flip_only_is_exact_mirror():
    x = torch.randint(0, 256, (16, 3, 8, 10), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    bt = BatchTransform(MEAN, STD, augment=True, max_shift=0, max_scale=0, jitter=0).train()
    out = bt(x, torch.Generator().manual_seed(0))
    ref = bt.eval()(x)
    flipped = [torch.allclose(o, r.flip(-1), atol=1e-4) for o, r in zip(out, ref)]
    same = [torch.allclose(o, r, atol=1e-4) for o, r in zip(out, ref)]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)


def test_batch_transform_does_not_change_hue():
    x = torch.empty(16, 3, 20, 16, dtype=torch.uint8)
    x[:, 0], x[:, 1], x[:, 2] = 200, 40, 40
    bt = BatchTransform(MEAN, STD, augment=True, jitter=0.1).train()
    out = bt(x, torch.Generator().manual_seed(0))
    rgb = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    assert ((g / r - 0.2).abs().max() < 1e-3) and ((b / r - 0.2).abs().max() < 1e-3)
    red = r.mean(dim=(1, 2))
    assert red.max() - red.min() > 0.02  # brightness does vary per sample
    assert (red > 200 / 255 * 0.85).all() and (red < 200 / 255 * 1.25).all()


def test_gaussian_blur_is_per_image_and_keeps_the_mean():
    """Each image gets its own sigma: 0 leaves it as it was; a point spreads into the 2-D Gaussian of its sigma
    (centre 1 / (2 pi sigma^2), the total kept); max_blur draws sigmas in [0, max_blur] only when set."""
    from vislab.core.transforms import gaussian_blur
    x = torch.zeros(3, 2, 25, 25)
    x[:, :, 12, 12] = 1.0
    y = gaussian_blur(x, torch.tensor([0.0, 1.0, 2.5]))
    assert torch.allclose(y[0], x[0], atol=1e-6)
    for i, s in ((1, 1.0), (2, 2.5)):
        assert y[i, 1].sum().item() == pytest.approx(1.0, abs=1e-5)
        assert y[i, 0, 12, 12].item() == pytest.approx(1 / (2 * np.pi * s * s), rel=0.03)
        assert y[i, 0, 12, 12 + round(s)] < y[i, 0, 12, 12]
    edges = torch.zeros(32, 3, 16, 16, dtype=torch.uint8)
    edges[..., ::2] = 255  # stripes: blur flattens them
    bt = BatchTransform([0.0] * 3, [1 / 255] * 3, augment=True, max_shift=0, max_scale=0, jitter=0, flip=False)
    sharp = bt.train()(edges, torch.Generator().manual_seed(0))
    bt.max_blur = 2.0
    soft = bt(edges, torch.Generator().manual_seed(0))
    contrast = (soft[..., 1:] - soft[..., :-1]).abs().mean((1, 2, 3))
    assert torch.allclose(sharp, bt.eval()(edges), atol=1e-2)  # no blur unless max_blur is set
    assert contrast.median() < 100 and contrast.max() - contrast.min() > 50  # sigmas differ per image


def test_array_dataset_getitems_matches_getitem():
    x = np.arange(20 * 3, dtype=np.int64).reshape(20, 3)
    y = np.arange(20) * 10
    ds = ArrayDataset(x, y, index=np.array([5, 3, 17, 8, 0]))
    assert len(ds) == 5
    xb, yb = ds.__getitems__([2, 0, 3])
    per_item = {(tuple(ds[i][0].tolist()), int(ds[i][1])) for i in [2, 0, 3]}
    assert {(tuple(r.tolist()), int(v)) for r, v in zip(xb, yb)} == per_item
    assert yb.tolist() == [50, 80, 170]  # sorted rows
    assert all(int(v) == int(r[0]) // 3 * 10 for r, v in zip(xb, yb))  # x and y stay aligned


def test_batch_loader_shuffle_deterministic():
    x = np.zeros((20, 2), dtype=np.uint8)
    y = np.arange(20)

    def order(seed, **kw):
        return [b[1].tolist() for b in batch_loader(x, y, np.arange(20), batch_size=6, shuffle=True, seed=seed, **kw)]

    a, b, c = order(3), order(3), order(4)
    assert a == b and a != c
    assert len(a) == 4 and sorted(sum(a, [])) == list(range(20))
    assert len(order(3, drop_last=True)) == 3
    plain = [b[1].tolist() for b in batch_loader(x, y, np.arange(5, 15), batch_size=4, shuffle=False)]
    assert plain == [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14]]
