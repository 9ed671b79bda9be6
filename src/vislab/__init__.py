"""vislab: train, evaluate, compare and serve image models (fashion attributes, CIFAR-10,
Siamese, generative labs) on one engine."""
__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a checkpoint for prediction: `vislab.load("runs/x/checkpoints/best.safetensors").predict(img)`."""
    from .serve import Predictor
    return Predictor.load(path, device=device)


__all__ = ["__version__", "load"]
