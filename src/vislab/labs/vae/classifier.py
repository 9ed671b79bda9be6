"""The generative lab's Fashion-MNIST classifier: trained on the shared engine, shipped with vislab.

    run_dir = train_classifier(ClassifierRunConfig())   # ~10 min on 2 CPU cores; test accuracy in metrics.json
    model, meta = load_classifier()                      # the shipped weights (vislab/weights/), or a path
    preds, probs = classify(model, images)               # uint8 (N, 1, 28, 28) -> class ids, probabilities
    fid = fid_classifier(real, fake, model)              # FID (a): its 128-d penultimate features
    fid = fid_inception(real, fake, weights_path)        # FID (b): Inception-v3 pool features (torchmetrics)

FID (a) is fully offline and the lab's default; FID (b) needs torch-fidelity's Inception weights
file (downloaded when online, or `weights_path`). FID values compare only within one extractor.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from vislab.core import checkpoint as ckpt
from vislab.core.augment import BatchAugment
from vislab.core.data.loaders import batch_loader
from vislab.core.engine import Trainer, guard_run, open_run, seed_all
from vislab.core.metrics import frechet_distance, per_class_report
from vislab.core.objectives import ClassificationObjective
from vislab.core.report import hardware
from vislab.labs.vae.config import ClassifierRunConfig
from vislab.labs.vae.data import FASHION_MNIST_CLASSES
from vislab.labs.vae.models import ClassifierFeatures, FashionClassifier

SHIPPED = Path(__file__).parent / "weights" / "fmnist_classifier.safetensors"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
SHIFT = 2  # training augmentation: random shifts of up to 2 pixels (zero padding) + horizontal flips


def transform(augment: bool) -> BatchAugment:
    """uint8 -> [0, 1]; in train mode (augment=True) a random crop of the 2-pixel-padded image + flip."""
    t = BatchAugment("b" if augment else "none", mean=(0.0,), std=(1.0,), channels_last=True)
    t.PADDING = SHIFT
    return t


@guard_run
def train_classifier(cfg: ClassifierRunConfig | None = None, resume: str | Path | None = None, progress: bool = True,
                     data=None) -> Path:
    """Fit the classifier (best checkpoint by validation loss), then write metrics.json with the test
    accuracy and per-class recall, and `classifier.safetensors` (the best weights + that metadata)."""
    from vislab.labs.vae.data import load_data
    cfg, fabric, run_dir = open_run(cfg or ClassifierRunConfig(), resume)
    data = data or load_data(cfg)
    tc = cfg.train.filled()
    seed_all(tc.seed)
    model = FashionClassifier(dropout=cfg.dropout).to(memory_format=torch.channels_last)
    meta = {"lab": "fmnist-classifier", "config": cfg.model_dump(mode="json"), "classes": data.train.classes}
    x = torch.from_numpy(np.array(data.train.images))
    y = torch.from_numpy(data.train.labels)
    loader = batch_loader(x, y, data.train_rows, tc.batch_size, shuffle=True, seed=tc.seed, drop_last=True)
    val_loader = batch_loader(x, y, data.val_rows, tc.eval_batch_size, shuffle=False)
    trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress)
    objective = ClassificationObjective({"label": len(data.train.classes)}, label_smoothing=tc.label_smoothing)
    result = trainer.fit(model, objective, loader, val_loader, transform(tc.augment), resume=bool(resume))
    if fabric.is_global_zero:
        best, best_meta = load_classifier(run_dir / "checkpoints" / "best.safetensors")
        preds, _ = classify(best, data.test.images)
        acc = float((preds == data.test.labels).mean())
        rep = per_class_report(data.test.labels, preds, data.test.classes)
        out = {"test_accuracy": acc, "test_recall_per_class": {c: rep[c]["recall"] for c in data.test.classes},
               "best_epoch": result.best_epoch, "epochs": tc.epochs, "train_seconds": round(result.seconds, 1),
               "train_images": int(len(data.train_rows)), "hardware": hardware()}
        (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
        weights, _ = ckpt.load_weights(run_dir / "checkpoints" / "best.safetensors")
        ckpt.save_weights(run_dir / "classifier.safetensors", weights,
                          {**best_meta, "test_accuracy": acc, "test_recall_per_class": out["test_recall_per_class"]})
    fabric.barrier()
    return run_dir


def ship(run_dir: str | Path, to: Path = SHIPPED) -> Path:
    """Copy a trained run's classifier.safetensors into the package (what `load_classifier()` loads)."""
    src = Path(run_dir) / "classifier.safetensors"
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found: train the classifier first (vislab vae classifier)")
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, to)
    return to


def load_classifier(path: str | Path | None = None) -> tuple[FashionClassifier, dict]:
    """The classifier in eval mode and its metadata (test accuracy when it went through train_classifier).
    path=None: the weights shipped with vislab."""
    path = Path(path) if path else SHIPPED
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights {path} not found" + (
            "; the shipped weights are missing from this install: train them with `vislab vae classifier --ship`"
            if path == SHIPPED else ""))
    weights, meta = ckpt.load_checked(path, "fmnist-classifier", "Fashion-MNIST classifier")
    model = FashionClassifier(dropout=float(meta.get("config", {}).get("dropout", 0.3)))
    ckpt.load_into(model, weights, path)
    return model.eval(), meta


@torch.no_grad()
def classify(model: FashionClassifier, images, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """uint8 or [0, 1] float images (N, 1, 28, 28) -> (predicted class ids (N,), probabilities (N, 10))."""
    model.eval()
    probs = []
    for i in range(0, len(images), batch_size):
        b = torch.from_numpy(np.array(images[i:i + batch_size]))
        b = b.float().div(255.0) if b.dtype == torch.uint8 else b.float()
        probs.append(model(b.contiguous(memory_format=torch.channels_last)).softmax(-1))
    p = torch.cat(probs).numpy() if probs else np.zeros((0, len(FASHION_MNIST_CLASSES)), np.float32)
    return p.argmax(1), p


def fid_classifier(real, fake, model: FashionClassifier | None = None) -> float:
    """FID (a): Frechet distance in the shipped classifier's 128-d penultimate feature space."""
    return frechet_distance(real, fake, ClassifierFeatures(model or load_classifier()[0]))


class InceptionWeightsMissing(FileNotFoundError):
    pass


def fid_inception(real, fake, weights_path: str | Path | None = None, batch_size: int = 200) -> float:
    """FID (b): torchmetrics' FrechetInceptionDistance (2048-d Inception-v3 pool features, torch-fidelity's
    weights). Grayscale 28x28 images are repeated to 3 channels; torchmetrics resizes them to 299x299.
    weights_path=None downloads the weights (needs internet); a clear error when they cannot be had."""
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics' Inception extractor needs it)
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:
        raise InceptionWeightsMissing(f"Inception FID needs torch-fidelity: pip install torch-fidelity ({e})") from e
    if weights_path is not None:
        if not Path(weights_path).is_file():
            raise InceptionWeightsMissing(f"Inception weights file {weights_path} not found; get {INCEPTION_URL}")
        # torch-fidelity unpickles the file with weights_only=False: refuse anything a weights-only load refuses
        # (code objects, arbitrary classes) first, so an untrusted file cannot run code.
        try:
            sd = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ckpt.CheckpointError(f"{weights_path} is not a plain weights file (refused by a weights-only "
                                       f"load: {type(e).__name__}: {str(e)[:200]})") from e
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ckpt.CheckpointError(f"{weights_path} does not hold a state dict of tensors")
    try:
        fid = FrechetInceptionDistance(feature=2048, normalize=True,
                                       feature_extractor_weights_path=str(weights_path) if weights_path else None)
    except Exception as e:  # offline: urllib/HTTP errors from the weights download
        raise InceptionWeightsMissing(
            f"could not load the Inception-v3 weights ({type(e).__name__}: {e}). Offline, download {INCEPTION_URL} "
            "elsewhere and pass its path (--inception-weights PATH); FID (a) (the classifier) needs no download") from e
    for imgs, is_real in ((real, True), (fake, False)):
        t = torch.as_tensor(np.asarray(imgs))
        for i in range(0, len(t), batch_size):
            b = t[i:i + batch_size]
            b = b.float().div(255.0) if b.dtype == torch.uint8 else b.float()
            fid.update(b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b, real=is_real)
    return float(fid.compute())
