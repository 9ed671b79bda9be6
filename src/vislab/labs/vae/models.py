"""Generative lab models (issue 5): variational autoencoders on 28x28 grayscale images.

    create_vae_model("vae")        fully connected, latent 32
    create_vae_model("conv-vae")   convolutional, latent 64
    create_vae_model("cvae")       the conv VAE conditioned on the class (one-hot into encoder and decoder)

Every model maps x in [0, 1] (N, 1, 28, 28) to {"out", "mu", "logvar", "z", "x"}: `out` are the
decoder's logits (Bernoulli likelihood) or means (Gaussian), `z` the reparameterised sample
mu + sigma * eps (mu itself in eval mode unless `sample=True`), `x` the input (for the loss). beta-VAE is
any of them trained with beta != 1 (`losses.elbo_loss`). `decode(z, y)` and `sample(n, y)` generate.
"""
from __future__ import annotations

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)


class _VAE(nn.Module):
    conditional = False
    likelihood = "bernoulli"  # what `out` means: logits (bernoulli) or pixel means (gaussian); see mean_image
    forward_takes_targets = True  # the engine passes the labels: cvae needs them, the others ignore them

    def __init__(self, latent_dim: int, num_classes: int = 10):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim, self.num_classes = latent_dim, num_classes

    def _onehot(self, y: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass the class labels y")
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        if len(y) != n:
            raise ValueError(f"{n} inputs but {len(y)} labels")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"class labels must be in 0..{self.num_classes - 1}")
        return nn.functional.one_hot(y, self.num_classes).float()

    def encode(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y=None, sample: bool | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x, y)
        draw = self.training if sample is None else sample
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if draw else mu
        return {"out": self.decode(z, y), "mu": mu, "logvar": logvar, "z": z, "x": x}

    def mean_image(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's output as an image in [0, 1]: sigmoid of Bernoulli logits, clamped Gaussian means."""
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out.clamp(0, 1)

    @torch.no_grad()
    def sample(self, n: int, y=None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n images from the prior N(0, temperature^2 I), as mean images in [0, 1] (N, 1, 28, 28)."""
        device = next(self.parameters()).device
        z = temperature * torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.mean_image(self.decode(z, y))


class FCVAE(_VAE):
    """784 -> 512 -> 256 -> (mu, logvar) ; z -> 256 -> 512 -> 784 logits, ReLU."""

    def __init__(self, latent_dim: int = 32, num_classes: int = 10, hidden: tuple[int, int] = (512, 256)):
        super().__init__(latent_dim, num_classes)
        h1, h2 = hidden
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
        self.mu, self.logvar = nn.Linear(h2, latent_dim), nn.Linear(h2, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, h2), nn.ReLU(), nn.Linear(h2, h1), nn.ReLU(), nn.Linear(h1, 784))

    def encode(self, x, y=None):
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z, y=None):
        return self.dec(z).view(-1, *IMAGE_SHAPE)


class ConvVAE(_VAE):
    """conv w (s2, 14x14) -> conv 2w (s2, 7x7) -> fc 256 -> (mu, logvar); mirrored with transposed convs
    (w = `width`, 64 by default). Conditional (cvae): the one-hot class enters the encoder as 10 constant
    channels and the decoder concatenated to z.

    `depth` > 0 gives a deeper decoder: `depth` 3x3 conv layers after each upsampling (w channels at 14x14,
    w/2 at 28x28) and a 3x3 output conv; a conditional model also gets the one-hot class as constant channels
    at 7x7 and 14x14, so the class reaches the layers that draw detail. depth 0 is the plain mirror above."""

    def __init__(self, latent_dim: int = 64, num_classes: int = 10, conditional: bool = False, width: int = 64,
                 depth: int = 0):
        super().__init__(latent_dim, num_classes)
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self.conditional, self.width, self.depth = conditional, width, depth
        c, w = (num_classes if conditional else 0), width
        self.enc = nn.Sequential(nn.Conv2d(1 + c, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(2 * w * 7 * 7, 256), nn.ReLU())
        self.mu, self.logvar = nn.Linear(256, latent_dim), nn.Linear(256, latent_dim)
        self.dec_fc = nn.Sequential(nn.Linear(latent_dim + c, 256), nn.ReLU(), nn.Linear(256, 2 * w * 7 * 7), nn.ReLU())
        if depth == 0:
            self.dec = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(w, 1, 4, 2, 1))
            return

        def refine(ch):
            return [m for _ in range(depth) for m in (nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU())]

        h = max(w // 2, 1)
        self.dec14 = nn.Sequential(nn.ConvTranspose2d(2 * w + c, w, 4, 2, 1), nn.ReLU(), *refine(w))
        self.dec = nn.Sequential(nn.ConvTranspose2d(w + c, h, 4, 2, 1), nn.ReLU(), *refine(h),
                                 nn.Conv2d(h, 1, 3, padding=1))

    @staticmethod
    def _with_class(h: torch.Tensor, oh: torch.Tensor | None) -> torch.Tensor:
        if oh is None:
            return h
        return torch.cat([h, oh[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1)

    def encode(self, x, y=None):
        h = self.enc(self._with_class(x, self._onehot(y, x.shape[0], x.device)))
        return self.mu(h), self.logvar(h)

    def decode(self, z, y=None):
        oh = self._onehot(y, z.shape[0], z.device)
        if oh is not None:
            z = torch.cat([z, oh], dim=1)
        h = self.dec_fc(z).view(-1, 2 * self.width, 7, 7)
        if self.depth == 0:
            return self.dec(h)
        return self.dec(self._with_class(self.dec14(self._with_class(h, oh)), oh))


VAE_MODELS = {
    "vae": lambda latent_dim=32, num_classes=10, width=None, depth=0: FCVAE(latent_dim, num_classes),
    "conv-vae": lambda latent_dim=64, num_classes=10, width=64, depth=0: ConvVAE(latent_dim, num_classes,
                                                                                  width=width or 64, depth=depth),
    "cvae": lambda latent_dim=64, num_classes=10, width=64, depth=0: ConvVAE(latent_dim, num_classes, True,
                                                                              width or 64, depth),
}


def create_vae_model(name: str, latent_dim: int | None = None, num_classes: int = 10,
                     likelihood: str = "bernoulli", width: int | None = None, depth: int = 0) -> _VAE:
    """vae (latent 32), conv-vae (latent 64) or cvae (latent 64) by default; `latent_dim` overrides.
    `likelihood` says how the decoder output is read (bernoulli logits or gaussian means); `width` is the
    conv models' base channel count (64; the FC VAE has none), `depth` their decoder's extra 3x3 layers per
    resolution (0)."""
    if name not in VAE_MODELS:
        raise ValueError(f"unknown VAE model {name!r}; models are {sorted(VAE_MODELS)}")
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'")
    kw = ({"num_classes": num_classes, "width": width, "depth": depth}
          | ({"latent_dim": latent_dim} if latent_dim is not None else {}))
    model = VAE_MODELS[name](**kw)
    model.likelihood = likelihood
    return model


# --------------------------------------------------------------------------- classifier (FID features, controllability)


class FashionClassifier(nn.Module):
    """A small CNN for 28x28 grayscale in [0, 1]: [conv3-BN-ReLU] x2 (32 ch) -> max-pool -> [conv3-BN-ReLU] x2
    (64 ch) -> max-pool -> fc 128 -> ReLU -> dropout -> fc 10. Its 128-d penultimate layer is the
    generative lab's offline FID feature space; its predictions measure the cVAE's controllability."""
    num_features = 128

    def __init__(self, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, self.num_features), nn.ReLU())
        self.drop, self.head = nn.Dropout(dropout), nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))


class ClassifierFeatures(nn.Module):
    """The frozen classifier's penultimate features as an FID extractor (uint8 or [0, 1] float input)."""

    def __init__(self, classifier: FashionClassifier):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: BatchNorm statistics and dropout fixed

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return self.classifier.features(x).double()
