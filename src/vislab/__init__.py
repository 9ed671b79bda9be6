"""vislab: train, evaluate, compare and serve image models (fashion attributes, CIFAR-10,
Siamese, generative labs) on one engine."""
__version__ = "0.1.0"

from vislab import labs as _labs  # noqa: E402,F401  (registers every lab's recipes, configs, loaders)


def load(path, device: str = "cpu"):
    """Load any lab's checkpoint (a .safetensors file or a run folder's best), by the lab its metadata
    names: a fashion checkpoint gives a `Predictor` (`vislab.load(p).predict(img)`); the other labs give
    `(model, meta)` (Siamese and VAE: `(model, meta, config)`), as their `lab.load_model` does. A fashion ensemble
    file (`vislab fashion ensemble`, .json) gives an `EnsemblePredictor` with the same `predict`."""
    from vislab.labs.fashion.ensemble_file import is_ensemble
    if is_ensemble(path):
        from vislab.labs.fashion.ensemble import EnsemblePredictor
        return EnsemblePredictor.load(path, device=device)
    from vislab.core.checkpoint import load_any
    from vislab.labs import loaders  # noqa: F401  (registers the labs' loaders)
    return load_any(path, device=device)


__all__ = ["__version__", "load"]
