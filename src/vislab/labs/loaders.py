"""Each lab's checkpoint loader, registered for `vislab.load` (imported only when a checkpoint is loaded)."""
from __future__ import annotations

from vislab.core.checkpoint import register_loader


@register_loader("fashion")
def _fashion(path, device: str = "cpu"):
    from vislab.labs.fashion.predict import Predictor
    return Predictor.load(path, device=device)


@register_loader("cifar")
def _cifar(path, device: str = "cpu"):
    from vislab.labs.cifar.lab import load_model
    return load_model(path, device=device)


@register_loader("siamese")
def _siamese(path, device: str = "cpu"):
    from vislab.labs.siamese.lab import load_model
    return load_model(path, device=device)


@register_loader("vae")
def _vae(path, device: str = "cpu"):
    from vislab.labs.vae.lab import load_model
    model, meta, cfg = load_model(path)
    return model.to(device), meta, cfg


@register_loader("fmnist-classifier")
def _classifier(path, device: str = "cpu"):
    from vislab.labs.vae.classifier import load_classifier
    model, meta = load_classifier(path)
    return model.to(device), meta
