"""Generative lab foundations (issue 5): the IDX reader against hand-made files, the ELBO pieces
against closed forms, and the VAE models' shapes and conditioning."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from vislab.core.data.images import DataError
from vislab.labs.vae.data import load_fashion_mnist, read_idx
from vislab.labs.vae.losses import elbo_loss, kl_standard_normal, reconstruction_nll
from vislab.labs.vae.models import create_vae_model


def _idx(path, arr: np.ndarray, code: int = 0x08, gz: bool = False, cut: int = 0, extra: bytes = b""):
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    body = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    raw = (head + body)[: len(head + body) - cut] + extra
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def test_idx_reader_on_hand_made_files(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert (read_idx(_idx(tmp_path / "a.idx", a)) == a).all()
    assert (read_idx(_idx(tmp_path / "a.idx.gz", a, gz=True), ndim=3) == a).all()
    i = np.array([-5, 70000, 3], dtype=np.int32)  # big-endian int32 (type 0x0C)
    out = read_idx(_idx(tmp_path / "i.idx", i, code=0x0C))
    assert out.tolist() == [-5, 70000, 3] and out.dtype == np.int32
    f = np.array([[0.5, -2.25]], dtype=np.float32)
    assert read_idx(_idx(tmp_path / "f.idx", f, code=0x0D)).tolist() == [[0.5, -2.25]]


@pytest.mark.parametrize("case,match", [
    ("magic", "not an IDX file"), ("truncated", "truncated"), ("trailing", "trailing bytes"),
    ("ndim", "dimensions, expected 1"), ("badgz", "cannot be read as gzip"), ("header", "truncated IDX header"),
])
def test_idx_reader_errors_name_the_file(tmp_path, case, match):
    a = np.zeros((4, 2, 2), dtype=np.uint8)
    p = tmp_path / "x-idx3-ubyte"
    if case == "magic":
        p.write_bytes(b"\x1f\x8b\x08\x00" + bytes(40))
    elif case == "truncated":
        _idx(p, a, cut=3)
    elif case == "trailing":
        _idx(p, a, extra=b"\x00")
    elif case == "ndim":
        _idx(p, a)
    elif case == "badgz":
        p = tmp_path / "x.gz"
        p.write_bytes(gzip.compress(bytes(100))[:20])
    else:
        p.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match=match) as e:
        read_idx(p, ndim=1 if case == "ndim" else None)
    assert str(p) in str(e.value)


def test_fashion_mnist_loader_checks_counts(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for stem in ("train", "t10k"):
        _idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", x, gz=True)
        _idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.array([0, 1, 2, 3, 9], dtype=np.uint8))
    tr, te = load_fashion_mnist(tmp_path)
    assert tr.images.shape == (5, 1, 28, 28) and (tr.images[:, 0] == x).all() and te.labels.tolist() == [0, 1, 2, 3, 9]
    assert tr.classes[4] == "Coat"
    _idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2], dtype=np.uint8))
    with pytest.raises(DataError, match="5 images but .* 3 labels"):
        load_fashion_mnist(tmp_path)


@pytest.mark.realdata
def test_real_fashion_mnist(fashion_mnist):
    tr, te = load_fashion_mnist(fashion_mnist)
    assert tr.images.shape == (60000, 1, 28, 28) and te.images.shape == (10000, 1, 28, 28)
    assert np.bincount(tr.labels).tolist() == [6000] * 10 and np.bincount(te.labels).tolist() == [1000] * 10
    assert tr.images.mean() == pytest.approx(72.94, abs=0.01) and te.images.mean() == pytest.approx(73.15, abs=0.01)


def test_kl_matches_torch_distributions_closed_form():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    want = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(kl_standard_normal(mu, logvar), want, atol=1e-5)
    assert kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0  # q = prior
    # by hand: mu = 1, sigma^2 = e: 0.5 * (e + 1 - 1 - 1) = (e - 1) / 2
    assert kl_standard_normal(torch.ones(1, 1), torch.ones(1, 1)).item() == pytest.approx((np.e - 1) / 2, rel=1e-6)


def test_elbo_pieces_add_up_and_match_hand_values():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 28, 28, generator=g)
    logits = torch.randn(4, 1, 28, 28, generator=g)
    mu, logvar = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    for beta in (0.5, 1.0, 4.0):
        total, parts = elbo_loss(logits, x, mu, logvar, beta)
        assert total.item() == pytest.approx(parts["recon"].item() + beta * parts["kl"].item(), rel=1e-6)
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(reconstruction_nll(logits, x), bce, rtol=1e-4)
    gauss = reconstruction_nll(p, x, "gaussian")
    want = 0.5 * (p - x).pow(2).flatten(1).sum(1) + 0.5 * 784 * np.log(2 * np.pi)
    assert torch.allclose(gauss, want, rtol=1e-6)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta must be > 0"):
            elbo_loss(logits, x, mu, logvar, bad)
    with pytest.raises(ValueError, match="unknown likelihood"):
        reconstruction_nll(logits, x, "poisson")


@pytest.mark.parametrize("name,latent,depth", [("vae", 32, 0), ("conv-vae", 64, 0), ("cvae", 64, 0),
                                               ("conv-vae", 64, 1), ("cvae", 64, 2)])
def test_vae_models_shapes_sampling_and_conditioning(name, latent, depth):
    torch.manual_seed(0)
    m = create_vae_model(name, depth=depth)
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    out = m.train()(x, y)
    assert out["out"].shape == (5, 1, 28, 28) and out["mu"].shape == (5, latent) and out["logvar"].shape == (5, latent)
    assert not torch.equal(out["z"], out["mu"])  # training: z = mu + sigma * eps
    ev = m.eval()(x, y)
    assert torch.equal(ev["z"], ev["mu"])
    s = m.sample(3, torch.tensor([4, 4, 4]), generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    assert create_vae_model(name, latent_dim=7)(x, y)["mu"].shape == (5, 7)
    if name == "cvae":
        z = torch.randn(2, latent)
        assert not torch.allclose(m.decode(z, torch.tensor([0, 0])), m.decode(z, torch.tensor([9, 9])))
        with pytest.raises(ValueError, match="conditional"):
            m(x)
        with pytest.raises(ValueError, match="0..9"):
            m(x, torch.tensor([0, 1, 2, 3, 10]))


def test_deeper_decoder_layers_and_the_class_at_every_resolution():
    plain, deep = create_vae_model("cvae"), create_vae_model("cvae", depth=2)
    convs = [m for m in deep.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 2 * 2 + 1  # depth 3x3 layers at 14x14 and at 28x28, plus the output conv
    assert deep.dec14[0].in_channels == 128 + 10 and deep.dec[0].in_channels == 64 + 10  # one-hot maps at 7x7 and 14x14
    assert not hasattr(plain, "dec14") and len(plain.dec) == 3  # depth 0: the plain two transposed convs
    assert create_vae_model("conv-vae", depth=1).dec14[0].in_channels == 128  # unconditional: no class channels
    with pytest.raises(ValueError, match="depth must be >= 0"):
        create_vae_model("cvae", depth=-1)


def test_fitted_prior_moments_per_class_sampling_and_file(tmp_path):
    from vislab.labs.vae.prior import FittedPrior
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    mu = np.concatenate([rng.normal([2, -1, 0], [1.0, 0.5, 0.2], (500, 3)), rng.normal([-3, 0, 1], 0.3, (500, 3))])
    mu[:500, 1] += 0.8 * mu[:500, 0]  # correlated dims in class 0: a full covariance, not a diagonal
    logvar = np.log(np.full((1000, 3), 0.04))
    p = FittedPrior.fit(mu, logvar, labels, 2)
    want_cov0 = np.cov(mu[:500], rowvar=False) + 0.04 * np.eye(3)  # spread of the means + mean posterior variance
    got_cov0 = (p.chol[0, 0] @ p.chol[0, 0].T).numpy()  # class 0, its one component
    assert np.allclose(got_cov0, want_cov0, atol=1e-5) and np.allclose(p.mean[1, 0].numpy(), mu[500:].mean(0))
    assert p.conditional and p.counts.tolist() == [500, 500]
    z = p.sample(20000, np.zeros(20000, int), generator=torch.Generator().manual_seed(0)).numpy()
    assert z.dtype == np.float32 and np.allclose(z.mean(0), mu[:500].mean(0), atol=0.05)
    assert np.allclose(np.cov(z, rowvar=False), want_cov0, atol=0.06)
    assert np.allclose(p.sample(1000, np.ones(1000, int), temperature=0.0).numpy(), mu[500:].mean(0), atol=1e-5)
    zc = p.sample(20000, np.zeros(20000, int), generator=torch.Generator().manual_seed(1), temperature=0.5).numpy()
    assert np.allclose(np.cov(zc, rowvar=False), 0.25 * want_cov0, atol=0.02)  # temperature scales the spread
    assert np.allclose(zc.mean(0), mu[:500].mean(0), atol=0.03)  # around the same mean
    one = FittedPrior.fit(mu, logvar)  # unconditional: one Gaussian over every code
    assert not one.conditional and one.sample(4).shape == (4, 3)
    q = FittedPrior.load(p.save(tmp_path / "p.prior.safetensors"))
    assert torch.equal(q.chol, p.chol) and torch.equal(q.mean, p.mean)
    with pytest.raises(ValueError, match="at least 2 training images of class 2"):
        FittedPrior.fit(mu, logvar, labels, 3)
    with pytest.raises(ValueError, match="3 codes but 2 labels"):
        p.sample(3, [0, 1])


def test_fitted_prior_mixture_finds_the_modes_of_a_class():
    from vislab.labs.vae.prior import FittedPrior
    rng = np.random.default_rng(1)
    mu = np.concatenate([rng.normal(-4, 0.3, (300, 2)), rng.normal(4, 0.3, (100, 2))])  # one class, two modes 3:1
    logvar = np.log(np.full((400, 2), 0.01))
    one, two = FittedPrior.fit(mu, logvar), FittedPrior.fit(mu, logvar, components=2)
    assert one.components == 1 and two.components == 2
    order = np.argsort(two.mean[0, :, 0].numpy())
    assert np.allclose(two.mean[0, order].numpy(), [[-4, -4], [4, 4]], atol=0.1)
    assert np.allclose(two.weights[0, order].numpy(), [0.75, 0.25], atol=0.01)
    z2 = two.sample(4000, generator=torch.Generator().manual_seed(0)).numpy()
    z1 = one.sample(4000, generator=torch.Generator().manual_seed(0)).numpy()
    assert (np.abs(z2[:, 0]) < 2).mean() < 0.01  # the mixture leaves the gap between the modes empty
    assert (np.abs(z1[:, 0]) < 2).mean() > 0.2  # one Gaussian fills it: the "hole" a single density samples
    assert (z2[:, 0] > 0).mean() == pytest.approx(0.25, abs=0.03)
    with pytest.raises(ValueError, match="components must be >= 1"):
        FittedPrior.fit(mu, logvar, components=0)


def test_generate_from_a_fitted_prior_decodes_its_codes():
    from vislab.labs.vae.metrics import generate
    from vislab.labs.vae.prior import FittedPrior, prior_path
    torch.manual_seed(0)
    m = create_vae_model("cvae").eval()
    p = FittedPrior.fit(np.random.default_rng(0).normal(size=(40, 64)), np.zeros((40, 64)), np.arange(40) % 10, 10)
    y = np.array([3, 3, 7])
    imgs = generate(m, 3, y, seed=5, prior=p)
    z = p.sample(3, y, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(imgs, m.mean_image(m.decode(z, torch.as_tensor(y))), atol=1e-6)
    assert not torch.allclose(imgs, generate(m, 3, y, seed=5))  # N(0, I) draws other codes
    assert prior_path("runs/x/checkpoints/last.safetensors").name == "last.prior.safetensors"


def test_unknown_vae_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="conv-vae"):
        create_vae_model("gan")


def test_vae_config_refuses_bad_beta():
    from vislab.labs.vae.config import VaeRunConfig
    with pytest.raises(ValueError, match="beta must be > 0"):
        VaeRunConfig.model_validate({"model": {"beta": 0}})
    assert VaeRunConfig().train.augment is False and VaeRunConfig().train.filled().optimizer == "adam"


def test_fid_of_a_set_against_itself_is_zero_and_against_a_shifted_set_positive():
    from vislab.core.metrics import frechet_distance
    from vislab.labs.vae.models import ClassifierFeatures, FashionClassifier
    torch.manual_seed(0)
    ext = ClassifierFeatures(FashionClassifier())  # untrained weights: the properties hold for any extractor
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(400, 1, 28, 28, generator=g) * 200).to(torch.uint8)
    b = (torch.rand(400, 1, 28, 28, generator=g) * 200).to(torch.uint8)  # same distribution, other draw
    shifted = a // 4  # the same images, darker
    same = frechet_distance(a, a, ext)
    near = frechet_distance(a, b, ext)
    far = frechet_distance(a, shifted, ext)
    assert abs(same) < 1e-6 * far and far > 50 * near > 0  # measured: ~1e-15, 1.9e-5, 2.8e-3 (random weights)
    assert frechet_distance(a.float() / 255, shifted, ext) == pytest.approx(far, rel=1e-3)  # uint8 or [0, 1] floats
    assert ext.train().training is False and FashionClassifier()(torch.rand(2, 1, 28, 28)).shape == (2, 10)
