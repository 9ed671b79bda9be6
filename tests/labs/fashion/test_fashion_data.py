"""Fashion data: cleaning steps, colour merging, label encoders, the whole prepare()."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vislab.core.data.images import DataError, load_image
from vislab.labs.fashion import synthetic
from vislab.labs.fashion.config import FashionDataConfig
from vislab.labs.fashion.data import (
    COLOUR_MAP,
    STANDARD_COLOURS,
    drop_rare_classes,
    encode,
    fit_encoders,
    merge_colours,
    prepare,
)


def test_drop_rare_classes_repeats_until_stable():
    df = pd.DataFrame({"A": ["a", "a", "a", "a", "b", "b", "a"],
                       "B": ["p", "p", "p", "q", "q", "q", "p"]})
    # pass 1: A=b (2 rows) is rare; that leaves B=q with 1 row -> dropped on pass 2
    out, dropped = drop_rare_classes(df, ["A", "B"], min_samples=3)
    assert out.index.tolist() == [0, 1, 2, 6]
    assert dropped == ["A=b (2)", "B=q (1)"]
    for c in ["A", "B"]:
        assert out[c].value_counts().min() >= 3
    same, none = drop_rare_classes(df, ["A", "B"], min_samples=1)
    assert len(same) == 7 and none == []
    gone, _ = drop_rare_classes(df, ["A", "B"], min_samples=6)
    assert len(gone) == 0


RAW_COLOURS = ["Black", "White", "Blue", "Brown", "Grey", "Red", "Green", "Pink", "Navy Blue", "Purple", "Silver",
               "Yellow", "Beige", "Gold", "Maroon", "Orange", "Olive", "Cream", "Multi", "Steel", "Charcoal", "Peach",
               "Off White", "Skin", "Lavender", "Grey Melange", "Khaki", "Magenta", "Tan", "Teal", "Mustard",
               "Bronze", "Copper", "Turquoise Blue", "Rust", "Burgundy", "Metallic", "Coffee Brown", "Rose", "Mauve",
               "Nude", "Sea Green", "Mushroom Brown", "Taupe", "Lime Green", "Fluorescent Green"]


def test_merge_colours_maps_46_raw_onto_standard():
    assert len(set(RAW_COLOURS)) == 46
    merged = merge_colours(pd.Series(RAW_COLOURS))
    assert merged.nunique() <= 20
    assert set(merged) <= set(STANDARD_COLOURS)
    m = dict(zip(RAW_COLOURS, merged))
    assert m["Charcoal"] == m["Grey Melange"] == m["Steel"] == "Grey"
    assert m["Off White"] == "White" and m["Navy Blue"] == "Navy Blue" and m["Burgundy"] == "Maroon"
    assert set(COLOUR_MAP) <= set(RAW_COLOURS)  # the map only names real raw values
    other = merge_colours(pd.Series(["Zebra", None, "Teal"]))
    assert other[0] == "Zebra" and pd.isna(other[1]) and other[2] == "Blue"


def test_fit_encoders_and_encode():
    df = pd.DataFrame({"t1": ["b", "a", "c", "a"], "t2": ["y", "x", "x", "y"]})
    enc = fit_encoders(df, ["t1", "t2"])
    assert enc == {"t1": ["a", "b", "c"], "t2": ["x", "y"]}
    y, unseen = encode(df, enc)
    assert y.dtype == np.int64 and y.tolist() == [[1, 1], [0, 0], [2, 0], [0, 1]]
    assert unseen == {}
    new = pd.DataFrame({"t1": ["z", "c", "z", "q"], "t2": ["x", "w", "y", "y"]})
    y, unseen = encode(new, enc)
    assert y.tolist() == [[-1, 0], [2, -1], [-1, 1], [-1, 1]]
    assert unseen == {"t1": {"z": 2, "q": 1}, "t2": {"w": 1}}
    with pytest.raises(DataError, match=r"task 't3' has 1 class"):
        fit_encoders(pd.DataFrame({"t1": ["a", "b"], "t3": ["k", "k"]}), ["t1", "t3"])


def test_prepare_end_to_end(tmp_path):
    root = synthetic.generate(tmp_path / "d", n=400, seed=1)
    ids = pd.read_csv(root / "styles.csv")["id"].tolist()
    bad_trunc, bad_missing = ids[3], ids[10]
    jp = root / "images" / f"{bad_trunc}.jpg"
    b = jp.read_bytes()
    jp.write_bytes(b[: len(b) // 2])
    (root / "images" / f"{bad_missing}.jpg").unlink()
    cfg = FashionDataConfig(root=str(root), image_size=(32, 24), min_samples=5, cache_dir=str(tmp_path / "cache"),
                            workers=1)
    p = prepare(cfg, progress=False)

    steps = {s.step: s for s in p.steps}
    assert steps["rows read"].remaining == 400
    assert steps["malformed rows (too few fields)"].removed == 0
    assert steps["missing value in a target column"].removed == 0
    assert steps["image file missing"].removed == 1 and f"{bad_missing}.jpg" in steps["image file missing"].detail
    assert steps["image unreadable (corrupt, truncated or not an image)"].removed == 1
    assert f"{bad_trunc}.jpg" in steps["image unreadable (corrupt, truncated or not an image)"].detail
    assert steps["image file empty"].removed == 0
    assert p.steps[-1].remaining == len(p.df)
    assert steps["image over PIL's decompression-bomb limit"].remaining == 398

    n = len(p.df)
    assert 300 < n <= 398
    assert n == p.images.shape[0] == p.targets.shape[0]
    assert p.images.shape[1:] == (3, 32, 24) and p.images.dtype == np.uint8
    assert str(bad_trunc) not in set(p.df["id"]) and str(bad_missing) not in set(p.df["id"])
    allidx = np.concatenate([p.splits["train"], p.splits["val"], p.splits["test"]])
    assert len(allidx) == n and sorted(allidx.tolist()) == list(range(n))  # disjoint + covering
    for t in cfg.label_cols:
        assert p.df[t].value_counts().min() >= 5
    assert set(p.df["baseColour"]) <= set(STANDARD_COLOURS)
    # cached image rows line up with table rows after dropping
    for i in range(n):
        assert np.array_equal(p.images[i], load_image(p.df["_image"][i], (32, 24)).transpose(2, 0, 1)), i
    assert all(p.df["_image"][i].endswith(f"/{p.df['id'][i]}.jpg") for i in range(n))
    # targets decode back to the labels
    for j, t in enumerate(p.encoders):
        assert [p.encoders[t][k] for k in p.targets[:, j]] == p.df[t].tolist()
    assert p.tasks == {t: p.df[t].nunique() for t in cfg.label_cols}
    # second run: same cache file, same result
    q = prepare(cfg, progress=False)
    assert q.cache_file == p.cache_file and np.array_equal(q.images, p.images) and q.df.equals(p.df)


def test_too_few_rows_for_min_samples_says_which_knob_before_decoding(tmp_path, monkeypatch):
    """--limit 200 with data.min_samples 50: every class is rare. The error says so with the knob, before a
    single image is decoded (the images here do not even exist), and counts the steps without '-0'."""
    rng = np.random.default_rng(0)
    n = 200
    pd.DataFrame({"id": range(n), "gender": rng.choice(["Men", "Women", "Boys", "Girls", "Unisex"], n),
                  "season": rng.choice(["Fall", "Summer", "Winter", "Spring"], n)}).to_csv(tmp_path / "s.csv",
                                                                                        index=False)
    import vislab.labs.fashion.data as fdata
    monkeypatch.setattr(fdata, "decode_images", lambda *a, **k: pytest.fail("decoded images before the check"))
    cfg = FashionDataConfig(root=str(tmp_path), csv="s.csv", label_cols=["gender", "season"], limit=150)
    with pytest.raises(DataError) as e:
        prepare(cfg, progress=False)
    msg = str(e.value)
    assert "data.min_samples=50" in msg and "lower it (e.g. data.min_samples=5)" in msg and "raise --limit" in msg
    assert "limit=150: 50 removed" in msg and "-0" not in msg and ": 0 removed" not in msg


def test_evaluation_data_keeps_rare_known_classes(tmp_path):
    """prepare_eval: no rare-class filter; unseen labels counted per task and left out (or kept with partial)."""
    from vislab.labs.fashion.data import prepare_eval
    root = synthetic.generate(tmp_path / "syn", n=60, seed=1)
    df = pd.read_csv(root / "styles.csv")
    df.loc[:2, "season"] = "Monsoon"
    df.to_csv(root / "other.csv", index=False)
    enc = {"gender": sorted(df["gender"].unique()), "season": sorted(set(df["season"]) - {"Monsoon"})}
    cfg = FashionDataConfig(root=str(root), csv="other.csv", label_cols=["gender", "season"], min_samples=50,
                            image_size=(32, 24))
    prepared, unseen = prepare_eval(cfg, enc, progress=False)
    assert unseen == {"season": {"Monsoon": 3}}
    assert len(prepared.df) == len(df) - 3 == len(prepared.splits["all"])  # 60 rows < 50 per class: all kept
    assert (prepared.targets >= 0).all()
    partial, _ = prepare_eval(cfg, enc, partial=True, progress=False)
    assert len(partial.df) == len(df) and (partial.targets[:, 1] == -1).sum() == 3
    assert (partial.targets[:, 0] >= 0).all()
