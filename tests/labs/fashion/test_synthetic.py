import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vislab.labs.fashion import synthetic
from vislab.labs.fashion.synthetic import CATALOG, GENERATOR_VERSION, default_root, generate

KAGGLE_COLUMNS = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
                  "season", "year", "usage", "productDisplayName"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo dataset (n=3000, seed 0), generated once for the module."""
    root = generate(tmp_path_factory.mktemp("syn") / "data", n=3000, seed=0)
    return root, pd.read_csv(root / "styles.csv")


def _pixels(root, i):
    return np.asarray(Image.open(root / "images" / f"{i}.jpg"))


def test_layout_columns_and_images(demo):
    root, df = demo
    assert list(df.columns) == KAGGLE_COLUMNS
    assert len(df) == 3000 and df["id"].is_unique
    assert (root / ".synthetic.json").exists()
    for i in df["id"]:
        with Image.open(root / "images" / f"{i}.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (60, 80)
    assert df["year"].between(2010, 2017).all()
    assert df["productDisplayName"].str.contains(",").any()  # quoting is exercised
    assert set(df["articleType"]) == {c["articleType"] for c in CATALOG}


def test_hierarchy_consistent(demo):
    _, df = demo
    assert (df.groupby("articleType")[["masterCategory", "subCategory"]].nunique() == 1).all().all()
    assert df.groupby("subCategory")["masterCategory"].nunique().max() == 1


@pytest.mark.parametrize("col", ["gender", "masterCategory", "subCategory", "articleType", "baseColour", "season"])
def test_every_class_has_50_rows(demo, col):
    _, df = demo
    counts = df[col].value_counts()
    assert counts.min() >= 50, counts.to_dict()


def test_expected_class_shares():
    # expected share of every value is >= 2.5% so any seed gives ~75 rows at n=3000
    total = sum(c["weight"] for c in CATALOG)
    for key in ("colours", "gender"):
        share = {}
        for c in CATALOG:
            for k, p in c[key].items():
                share[k] = share.get(k, 0) + c["weight"] / total * p
        assert min(share.values()) >= 0.025, (key, share)
    assert min(c["weight"] / total for c in CATALOG) >= 0.025


def test_small_size_and_custom_shape(tmp_path):
    root = generate(tmp_path, n=5, seed=1, size=(40, 30))
    assert root == tmp_path
    for i in pd.read_csv(root / "styles.csv")["id"]:
        assert Image.open(root / "images" / f"{i}.jpg").size == (30, 40)


def test_deterministic(tmp_path):
    a, b, c = (generate(tmp_path / d, n=40, seed=s) for d, s in (("a", 7), ("b", 7), ("c", 8)))
    assert (a / "styles.csv").read_bytes() == (b / "styles.csv").read_bytes()
    assert (a / "styles.csv").read_bytes() != (c / "styles.csv").read_bytes()
    ids = pd.read_csv(a / "styles.csv")["id"][:5]
    for i in ids:
        assert np.array_equal(_pixels(a, i), _pixels(b, i))
    assert any(not np.array_equal(_pixels(a, i), _pixels(c, i)) for i in ids)


def test_idempotent_and_regenerates_on_change(tmp_path):
    generate(tmp_path, n=20, seed=0)
    csv, img = tmp_path / "styles.csv", tmp_path / "images" / "10000.jpg"
    os.utime(csv, (1_000_000, 1_000_000))
    os.utime(img, (1_000_000, 1_000_000))
    generate(tmp_path, n=20, seed=0)
    assert csv.stat().st_mtime == 1_000_000 and img.stat().st_mtime == 1_000_000
    meta = (tmp_path / ".synthetic.json").read_text()
    assert str(GENERATOR_VERSION) in meta
    generate(tmp_path, n=25, seed=0)  # different n -> regenerated
    assert len(pd.read_csv(csv)) == 25 and csv.stat().st_mtime != 1_000_000


def test_incomplete_generation_is_redone(tmp_path):
    generate(tmp_path, n=10, seed=0)
    (tmp_path / ".synthetic.json").unlink()  # as if killed before finishing
    os.utime(tmp_path / "styles.csv", (1_000_000, 1_000_000))
    generate(tmp_path, n=10, seed=0)
    assert (tmp_path / "styles.csv").stat().st_mtime != 1_000_000
    assert (tmp_path / ".synthetic.json").exists()


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("VISLAB_CACHE", str(tmp_path))
    assert default_root() == tmp_path / "synthetic"
    monkeypatch.delenv("VISLAB_CACHE")
    assert default_root() == synthetic.Path.home() / ".cache" / "vislab" / "synthetic"


@pytest.fixture(scope="module")
def small_pixels(demo):
    """First 2000 demo images downsampled to 20x15, standardised on the 1500 training rows."""
    root, df = demo
    df = df.iloc[:2000]
    x = np.stack([np.asarray(Image.open(root / "images" / f"{i}.jpg").resize((15, 20), Image.BILINEAR),
                             np.float32).ravel()
                  for i in df["id"]]) / 255.0
    return (x - x[:1500].mean(0)) / (x[:1500].std(0) + 1e-3), df


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("col", ["articleType", "baseColour"])
def test_learnable_from_pixels(small_pixels, col):
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, df = small_pixels
    y = df[col].to_numpy()
    clf = linear_model.LogisticRegression(max_iter=100, C=0.05).fit(x[:1500], y[:1500])
    acc = (clf.predict(x[1500:]) == y[1500:]).mean()
    majority = pd.Series(y[1500:]).value_counts().iloc[0] / 500
    assert acc > majority + 0.2, (acc, majority)
