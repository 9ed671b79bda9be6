"""`model.backbone: dlib_face_resnet`: a network trained on faces, as a frozen backbone of the Siamese lab.

dlib's face recognition ResNet (29 convolutions, trained by Davis King on about 3 million faces of 7,485 people,
no AT&T face among them) maps a face to 128 numbers. The weights ship on PyPI in `face_recognition_models` (with
dlib's 5-point landmark model), and dlib itself as the `dlib-bin` wheel: `pip install "vislab[faces]"`, so they work
offline. Each image is handled as dlib does: its largest frontal face found by dlib's HOG detector (the whole image
when none is found: a photo that is already a face crop), five landmarks, the face cut out, aligned and resized to
150x150 (`get_face_chip`), then the network.

The network is dlib's, not PyTorch's: it has no gradient (`model.fine_tune` must be false), no intermediate feature
maps and no ONNX export. Within vislab it is an `nn.Module` taking the lab's normalised batches, so the WCCN fit,
flip TTA, evaluation, `verify` and `gallery` use it unchanged. Its embeddings are cached by image content (the
features of a photo never change), so cross-validation embeds each photo once, not once per fold."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core.errors import VislabError
from vislab.labs.siamese.config import FACE_NET as NAME

CHIP, PADDING = 150, 0.25  # dlib's own settings for this network (face_recognition_model_v1)
INSTALL = 'pip install "vislab[faces]" (dlib-bin and face_recognition_models)'
_CACHE: dict[bytes, np.ndarray] = {}
"""Descriptors by image content, shared by every instance: the network never changes, so neither does a photo's."""


def face_model_files() -> dict[str, Path]:
    """Paths of dlib's face models in the `face_recognition_models` package; a one-line error when missing."""
    spec = importlib.util.find_spec("face_recognition_models")  # not imported: its __init__ needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise VislabError(f"model.backbone {NAME} needs dlib's face models: {INSTALL}")
    root = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = {"landmarks": root / "shape_predictor_5_face_landmarks.dat",
             "network": root / "dlib_face_recognition_resnet_model_v1.dat"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise VislabError(f"model.backbone {NAME}: {missing[0]} is missing; reinstall: {INSTALL}")
    return files


class DlibFaceNet(nn.Module):
    """Normalised images (N, 3, H, W) -> dlib's 128-d face descriptors (N, 128), float32, no gradient."""

    num_features = 128
    pretrained_cfg = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "input_size": (3, CHIP, CHIP),
                      "interpolation": "bilinear"}
    """timm's data config: the lab normalises pixels to [0, 1] only, undone exactly before dlib sees the photo."""

    def __init__(self, cache_size: int = 200_000):
        super().__init__()
        try:
            import dlib
        except ImportError as e:
            raise VislabError(f"model.backbone {NAME} needs dlib: {INSTALL}") from e
        files = face_model_files()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(files["landmarks"]))
        self.network = dlib.face_recognition_model_v1(str(files["network"]))
        self.cache, self.cache_size = _CACHE, cache_size

    def face_box(self, img: np.ndarray):
        """The largest face dlib's HOG detector finds in `img` (H, W, 3 uint8), else the whole image."""
        found = self.detector(img, 0)
        if len(found):
            return max(found, key=lambda r: r.area())
        return self._dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1)

    def chip(self, img: np.ndarray) -> np.ndarray:
        """The aligned 150x150 face of `img`, as dlib's network expects it."""
        shape = self.landmarks(img, self.face_box(img))
        return self._dlib.get_face_chip(img, shape, size=CHIP, padding=PADDING)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        imgs = (x.detach().float().cpu() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        keys = [hashlib.blake2b(np.ascontiguousarray(i).tobytes(), digest_size=16).digest() for i in imgs]
        vecs = [self.cache.get(key) for key in keys]
        todo = [k for k, v in enumerate(vecs) if v is None]
        if todo:
            chips = [self.chip(np.ascontiguousarray(imgs[k])) for k in todo]
            for k, v in zip(todo, self.network.compute_face_descriptor(chips)):
                vecs[k] = np.asarray(v, dtype=np.float32)
            if len(self.cache) + len(todo) > self.cache_size:
                self.cache.clear()
            self.cache.update((keys[k], vecs[k]) for k in todo)
        return torch.from_numpy(np.stack(vecs)).to(x.device)
