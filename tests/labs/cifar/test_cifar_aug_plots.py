"""CIFAR lab helpers: batched augmentation (vislab.core.augment), per-class metrics, and the new plots."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from vislab.core import plots
from vislab.core.augment import (
    AUGMENTATIONS,
    CIFAR_MEAN,
    CIFAR_STD,
    BatchAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    affine_flip,
    channel_stats,
    crop_flip,
    denormalize,
    kinds,
)
from vislab.core.metrics import confused_pairs, confusion_counts, per_class_report
from vislab.labs.cifar.plots import accuracy_vs_time, augmentation_preview, curves_by_model, feature_maps


def _u8(n=6, h=32, w=32, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _png(path, min_width=200):
    assert path.exists() and path.stat().st_size > 1000, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > min_width and im.height > 100, (im.size, path)


# ------------------------------------------------------------------------------------------- augment
def test_kinds_and_unknown_kind():
    assert kinds() == list(AUGMENTATIONS) == ["none", "a", "b"]
    assert all(isinstance(v, str) and v for v in AUGMENTATIONS.values())
    with pytest.raises(ValueError, match="none, a, b"):
        BatchAugment("c")


@pytest.mark.parametrize("kind", ["none", "a", "b"])
def test_eval_mode_only_normalises_exactly(kind):
    x = _u8()
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    expected = (x.float() / 255 - mean) / std
    aug = BatchAugment(kind).eval()
    out = aug(x, _gen())
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, expected)
    assert torch.equal(aug(x), expected)
    assert torch.equal(x, _u8())  # input untouched
    # kind "none" does not augment in train mode either
    assert torch.equal(BatchAugment("none").train()(x, _gen()), expected)
    # custom statistics, no channels_last
    out2 = BatchAugment(kind, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channels_last=False).eval()(x)
    assert out2.is_contiguous() and torch.equal(out2, (x.float() / 255 - 0.5) / 0.25)


def test_channel_stats_and_denormalize_roundtrip():
    x = _u8(20, 8, 8, seed=1)
    mean, std = channel_stats(x, chunk=7)
    a = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, a.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(std, a.std(axis=(0, 2, 3)), rtol=1e-7)
    assert channel_stats(x.numpy())[0] == pytest.approx(mean)
    aug = BatchAugment("none", mean, std)
    back = denormalize(aug(x), aug.mean, aug.std)
    assert back.dtype == torch.uint8 and torch.equal(back, x)
    assert torch.equal(denormalize(BatchAugment()(x)[0]), x[0])  # single image, default CIFAR statistics


def _coordinate_images(n, h=32, w=32):
    """ch0 = 7 * row, ch1 = 7 * col, ch2 = 100 + sample index: every pixel is unique and names its image."""
    r = torch.arange(h).view(h, 1).expand(h, w)
    c = torch.arange(w).view(1, w).expand(h, w)
    x = torch.empty(n, 3, h, w, dtype=torch.uint8)
    x[:, 0], x[:, 1] = (7 * r).to(torch.uint8), (7 * c).to(torch.uint8)
    x[:, 2] = (100 + torch.arange(n)).view(n, 1, 1).to(torch.uint8)
    return x


def test_crop_flip_is_an_exact_integer_shift_of_the_padded_image():
    n, h, w = 120, 32, 32
    x = _coordinate_images(n)
    aug = BatchAugment("b").train()
    out = denormalize(aug(x, _gen(5)), aug.mean, aug.std)  # exact round trip (see test above)
    params = aug.sample(n, h, w, _gen(5))
    ii = torch.arange(h).view(h, 1).expand(h, w)
    jj = torch.arange(w).view(1, w).expand(h, w)
    seen_flip = []
    for k in range(n):
        o = out[k].long()
        content = o[2] != 0
        assert torch.all(o[:, ~content] == 0)  # everything else is zero padding
        assert torch.all(o[2][content] == 100 + k)  # pixels of the same image only
        assert torch.all(o[0][content] % 7 == 0) and torch.all(o[1][content] % 7 == 0)
        r_in, c_in = o[0][content] // 7, o[1][content] // 7
        dr = r_in - ii[content]
        assert torch.all(dr == dr[0])  # a constant integer row offset
        flipped = bool(torch.all(c_in + jj[content] == c_in[0] + jj[content][0]))
        dc = c_in + jj[content] if flipped else c_in - jj[content]
        assert torch.all(dc == dc[0])  # constant column offset (mirrored when flipped)
        dy, dx, fl = int(params["dy"][k]), int(params["dx"][k]), bool(params["flip"][k])
        assert int(dr[0]) == dy - 4 and fl == flipped
        assert int(content.sum()) == (h - abs(dy - 4)) * (w - abs(dx - 4))
        seen_flip.append(flipped)
    assert 0.3 < np.mean(seen_flip) < 0.7
    assert len({(int(a), int(b)) for a, b in zip(params["dy"], params["dx"])}) > 30
    assert params["dy"].min() == 0 and params["dy"].max() == 8  # the full padding range is used


def test_crop_flip_function_on_any_dtype():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float64).view(2, 1, 4, 5)
    out = crop_flip(x, torch.tensor([2, 2]), torch.tensor([2, 0]), torch.tensor([False, True]), padding=2)
    assert torch.equal(out[0], x[0])  # centre window, no flip = identity
    expected = torch.zeros(4, 5, dtype=torch.float64)
    expected[:, 2:] = x[1, 0, :, :3]  # window starts 2 px left of the image: 2 zero columns on the left ...
    assert torch.equal(out[1, 0], expected.flip(-1))  # ... then mirrored


@pytest.mark.parametrize("kind", ["a", "b"])
def test_same_seed_same_output_different_seed_differs(kind):
    x = _u8(16)
    aug = BatchAugment(kind).train()
    a, b, c = aug(x, _gen(3)), aug(x, _gen(3)), aug(x, _gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, BatchAugment(kind).eval()(x))  # train mode augments


def test_parameter_ranges_and_flip_fraction():
    pa = BatchAugment("a").sample(2000, 32, 32, _gen(0))
    for key in ("brightness", "contrast", "saturation"):
        v = pa[key]
        assert v.min() >= 0.75 and v.max() <= 1.25 and v.min() < 0.77 and v.max() > 1.23
    assert pa["angle"].abs().max() <= 10 and pa["angle"].abs().max() > 9.5
    for key in ("tx", "ty"):
        assert torch.equal(pa[key], pa[key].round()) and pa[key].abs().max() == 3  # |t| <= 0.1 * 32 px
    assert pa["scale"].min() >= 0.9 and pa["scale"].max() <= 1.1
    pb = BatchAugment("b").sample(2000, 32, 32, _gen(1))
    for p in (pa, pb):
        assert 0.45 <= p["flip"].float().mean().item() <= 0.55
    assert BatchAugment("none").sample(10, 32, 32, _gen()) == {}


def test_colour_jitter_semantics():
    const = torch.full((2, 3, 8, 8), 0.4)
    assert (adjust_brightness(const, torch.tensor([1.2, 0.75])).mean(dim=(1, 2, 3)).tolist()
            == pytest.approx([0.48, 0.3]))
    gray = torch.rand(3, 1, 8, 8, generator=_gen()).expand(3, 3, 8, 8)
    # no colour to remove (up to torchvision's luma weights summing to 0.9999)
    torch.testing.assert_close(adjust_saturation(gray, torch.zeros(3)), gray, atol=2e-4, rtol=0)
    torch.testing.assert_close(adjust_contrast(const, torch.tensor([0.5, 1.25])), const, atol=2e-4, rtol=0)
    col = torch.rand(3, 3, 8, 8, generator=_gen(1))
    s0 = adjust_saturation(col, torch.zeros(3))
    torch.testing.assert_close(s0[:, 0], s0[:, 1])  # saturation 0 -> grayscale
    # per-sample factors, torchvision semantics
    f = torch.tensor([0.75, 1.0, 1.25])
    for ours, ref in ((adjust_brightness, TF.adjust_brightness), (adjust_contrast, TF.adjust_contrast),
                      (adjust_saturation, TF.adjust_saturation)):
        got = ours(col, f)
        for k in range(3):
            torch.testing.assert_close(got[k], ref(col[k], float(f[k])), atol=1e-6, rtol=0)


def test_affine_matches_torchvision_and_folds_the_flip():
    x = torch.rand(3, 3, 32, 32, generator=_gen(2))
    angle, tx, ty, sc = torch.tensor([10.0, -7.0, 0.0]), torch.tensor([3.0, 0.0, -2.0]), \
        torch.tensor([-2.0, 1.0, 0.0]), torch.tensor([1.1, 0.9, 1.0])
    no, yes = torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)
    out, out_f = affine_flip(x, angle, tx, ty, sc, no), affine_flip(x, angle, tx, ty, sc, yes)
    for k in range(3):
        kw = dict(angle=float(angle[k]), translate=[int(tx[k]), int(ty[k])], scale=float(sc[k]), shear=[0.0, 0.0],
                  interpolation=InterpolationMode.BILINEAR)
        torch.testing.assert_close(out[k], TF.affine(x[k], **kw), atol=1e-4, rtol=0)
        torch.testing.assert_close(out_f[k], TF.affine(x[k].flip(-1), **kw), atol=1e-4, rtol=0)
    z = torch.zeros(3)
    torch.testing.assert_close(affine_flip(x, z, z, z, torch.ones(3), no), x)  # identity
    assert torch.equal(affine_flip(x, z, z, z, torch.ones(3), yes), x.flip(-1))  # pure flip is exact


def test_affine_augmentation_keeps_content_roughly_centred():
    n, size = 256, 32
    x = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    x[:, :, 12:20, 12:20] = 255  # centred bright square, centroid (15.5, 15.5)
    aug = BatchAugment("a").train()
    img = denormalize(aug(x, _gen(7)), aug.mean, aug.std).float().mean(dim=1)  # (N, H, W)
    mask = (img > 60).float()
    area = mask.sum(dim=(1, 2))
    assert torch.all(area > 30)  # the square is still there (scale 0.9-1.1, brightness/contrast >= 0.75)
    idx = torch.arange(size, dtype=torch.float32)
    cy = (mask.sum(dim=2) * idx).sum(dim=1) / area
    cx = (mask.sum(dim=1) * idx).sum(dim=1) / area
    shift = torch.stack([cx - 15.5, cy - 15.5], dim=1).abs()
    assert shift.max() <= 0.1 * size + 0.75
    assert shift.max() >= 2.0  # translations do happen


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu_with_a_cpu_generator():
    x = _u8(32)
    for kind in ("a", "b"):
        aug = BatchAugment(kind).train()
        cpu = aug(x, _gen(9))
        gpu = aug.cuda()(x.cuda(), _gen(9))
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------------------- metrics
def test_per_class_report_matches_sklearn():
    from sklearn.metrics import classification_report, precision_recall_fscore_support
    rng = np.random.default_rng(0)
    names = ["cat", "dog", "ship", "never_predicted", "never_true"]
    y_true = rng.integers(0, 4, 300)  # class 4 never occurs
    y_pred = rng.choice([0, 1, 2, 4], 300)  # class 3 never predicted
    y_pred[:120] = y_true[:120]
    y_pred[y_pred == 3] = 0
    rep = per_class_report(torch.from_numpy(y_true), y_pred, names)
    ref = classification_report(y_true, y_pred, labels=list(range(5)), target_names=names, output_dict=True,
                                zero_division=0)
    assert set(rep) == set(names) | {"macro avg"}
    for key in names + ["macro avg"]:
        for m, rm in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"), ("support", "support")):
            assert rep[key][m] == pytest.approx(ref[key][rm], abs=1e-12), (key, m)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(5)), zero_division=0)
    np.testing.assert_allclose([rep[n]["f1"] for n in names], f, atol=1e-12)
    assert rep["never_predicted"]["precision"] == 0.0 and rep["never_true"]["recall"] == 0.0
    assert rep["macro avg"]["support"] == 300


def test_confusion_counts_matches_sklearn():
    from sklearn.metrics import confusion_matrix
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 6, 500), rng.integers(0, 5, 500)
    cm = confusion_counts(t, torch.from_numpy(p), 7)
    assert cm.shape == (7, 7) and cm.dtype == np.int64
    np.testing.assert_array_equal(cm, confusion_matrix(t, p, labels=list(range(7))))
    with pytest.raises(ValueError):
        confusion_counts([0, 7], [0, 1], 7)


def test_confused_pairs_hand_made():
    names = ["a", "b", "c", "d"]
    cm = np.array([[50, 10, 0, 1],
                   [5, 40, 2, 0],
                   [0, 2, 30, 8],
                   [1, 0, 9, 20]])
    pairs = confused_pairs(cm, names, top=3)
    # c<->d: 17 of 40+30 samples, a<->b: 15 of 61+47, b<->c: 4 of 47+40 (ties: a<->d also 2... -> 2 < 4)
    assert pairs == [("c", "d", 17, pytest.approx(17 / 70)), ("a", "b", 15, pytest.approx(15 / 108)),
                     ("b", "c", 4, pytest.approx(4 / 87))]
    assert len(confused_pairs(cm, names, top=10)) == 4  # a<->c and b<->d never confused: left out
    assert confused_pairs(np.diag([3, 4]), ["x", "y"]) == []


# --------------------------------------------------------------------------------------------- plots
def test_augmentation_preview(tmp_path):
    img = _u8(1, seed=3)[0]
    augs = {k: BatchAugment(k) for k in AUGMENTATIONS}
    augs["b"].eval()
    p = augmentation_preview(img, augs, tmp_path / "aug.png", draws=10, seed=0)
    _png(p, min_width=800)
    assert not augs["b"].training and augs["a"].training  # modes restored
    _png(augmentation_preview(img.permute(1, 2, 0).numpy(), {"a": augs["a"]}, tmp_path / "aug_hwc.png", draws=3))


def _clustered(n_per=40, classes=3, d=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (classes, d))
    y = np.repeat(np.arange(classes), n_per)
    return (centres[y] + rng.normal(0, 1, (len(y), d))).astype(np.float32), y


def test_tsne_embed_and_scatter(tmp_path):
    x, y = _clustered()
    e1, e2 = plots.tsne_embed(x, seed=0, max_iter=300), plots.tsne_embed(x, seed=0, max_iter=300)
    assert e1.shape == (len(x), 2) and np.isfinite(e1).all()
    np.testing.assert_array_equal(e1, e2)
    idx = plots._balanced_subsample(np.array([0] * 50 + [1] * 5 + [2] * 45), 30, seed=1)
    assert len(idx) == 30 and np.array_equal(
        idx, plots._balanced_subsample(np.array([0] * 50 + [1] * 5 + [2] * 45), 30, 1))
    assert set(np.array([0] * 50 + [1] * 5 + [2] * 45)[idx]) == {0, 1, 2}
    p = plots.tsne_scatter(torch.from_numpy(x), y, ["one", "two", "three"], tmp_path / "tsne.png", "t-SNE test",
                           max_points=90)
    _png(p)


def test_feature_maps(tmp_path):
    stages = [("stem", torch.randn(1, 16, 16, 16)), ("layer 2", torch.randn(40, 8, 8).to(torch.bfloat16)),
              ("const", torch.zeros(2, 4, 4))]
    paths = feature_maps(stages, tmp_path / "maps", max_channels=32, image_u8=_u8(1)[0].numpy())
    assert [p.name for p in paths] == ["featuremap_00_stem.png", "featuremap_01_layer_2.png", "featuremap_02_const.png"]
    for p in paths:
        _png(p)


def test_bar_scatter_and_curve_plots(tmp_path):
    pc = per_class_report([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1], ["plane", "car", "bird"])
    _png(plots.per_class_bars({k: v for k, v in pc.items() if k != "macro avg"}, tmp_path / "pc.png", "Per class"))
    pts = {"resnet": (600.0, 0.93, 11_000_000), "small cnn": (45.0, 0.80, 120_000), "vit": (900.0, 0.85, 5_000_000)}
    _png(accuracy_vs_time(pts, tmp_path / "avt.png"))
    _png(accuracy_vs_time({"x": (0.0, 0.5, 0)}, tmp_path / "avt0.png"))
    hist = {"resnet": [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7}],
            "cnn": [{"epoch": e, "val_accuracy": 0.3 + 0.1 * e} for e in range(1, 5)], "empty": []}
    _png(curves_by_model(hist, tmp_path / "curves.png"))
    _png(curves_by_model({"none": []}, tmp_path / "nodata.png"))
