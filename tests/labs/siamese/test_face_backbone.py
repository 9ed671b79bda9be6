"""model.backbone dlib_face_resnet: dlib's face-trained network as the Siamese lab's frozen backbone (the faces
extra). Its descriptors, the content cache, the config checks, a real run on the shared faces and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.config import ConfigError, load_config
from vislab.core.errors import EXIT_INPUT, VislabError
from vislab.labs.siamese import face_backbone as F
from vislab.labs.siamese import lab as S
from vislab.labs.siamese.config import SiameseRunConfig

FACE = ["model.backbone=dlib_face_resnet", "model.feature_level=null", "model.feature_grid=1"]


def _faces(root, people=("s10", "s11", "s12"), per=4, size=(224, 184)):
    """uint8 (N, 3, H, W) photos of `people` from the shared faces, and their labels."""
    imgs, labels = [], []
    for k, p in enumerate(people):
        for f in sorted((root / p).glob("*.pgm"))[:per]:
            im = Image.open(f).convert("RGB").resize(size[::-1], Image.BICUBIC)
            imgs.append(np.asarray(im).transpose(2, 0, 1))
            labels.append(k)
    return np.stack(imgs), np.array(labels)


@pytest.mark.realdata
def test_descriptors_tell_people_apart_and_are_cached_by_content(faces):
    imgs, labels = _faces(faces)
    net = F.DlibFaceNet()
    F._CACHE.clear()
    x = torch.from_numpy(imgs).float() / 255  # the lab's normalisation for this backbone: mean 0, std 1
    e = net(x)
    assert e.shape == (12, 128) and e.dtype == torch.float32 and len(F._CACHE) == 12
    whole = (imgs.shape[3] - 1) * (imgs.shape[2] - 1)  # the fallback box's area
    assert all(net.face_box(np.ascontiguousarray(i.transpose(1, 2, 0))).area() < whole for i in imgs)  # all found
    d = torch.cdist(e, e)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(12, dtype=bool)
    assert d[torch.from_numpy(same & off)].max() < d[torch.from_numpy(~same)].min()  # every pair on the right side
    again = F.DlibFaceNet()(x[[3, 0]])  # another instance: the shared cache, no new descriptor
    assert torch.equal(again, e[[3, 0]]) and len(F._CACHE) == 12
    mirrored = net(x[:1].flip(-1))
    assert len(F._CACHE) == 13 and 0 < float((mirrored - e[:1]).norm()) < float(d[0][~same[0]].min())


def test_config_refuses_what_a_frozen_dlib_network_cannot_do():
    with pytest.raises(ConfigError, match="drop model.fine_tune=true, model.feature_level"):
        load_config(None, ["model.backbone=dlib_face_resnet", "model.feature_level=3"], model=SiameseRunConfig)
    with pytest.raises(ConfigError, match="drop model.train_blocks"):
        load_config(None, FACE + ["model.fine_tune=false", "model.train_blocks=2"], model=SiameseRunConfig)
    with pytest.raises(ConfigError, match="unknown timm backbone 'dlib_face_resnt'"):
        load_config(None, ["model.backbone=dlib_face_resnt"], model=SiameseRunConfig)
    cfg = load_config(None, FACE + ["model.fine_tune=false"], model=SiameseRunConfig)
    assert "dlib_face_resnet face features, no fine-tuning" in S.describe(cfg)


def test_missing_models_get_the_install_line(monkeypatch):
    monkeypatch.setattr(F.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(VislabError, match=r'pip install "vislab\[faces\]"'):
        F.DlibFaceNet()


@pytest.mark.realdata
def test_real_run_verifies_unseen_people_and_refuses_onnx_export(faces, tmp_path):
    from helpers import run_cli
    cfg = load_config("siamese/default", FACE + [f"data.root={faces}", f"out_dir={tmp_path}", "model.wccn=null",
                                                 "data.image_size=[112,92]"], model=SiameseRunConfig)
    run = S.train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())
    assert m["auc"] > 0.99 and m["eer"] < 0.03  # the four test people of split 42, never seen by dlib's network
    best = run / "checkpoints" / "best.safetensors"
    model, meta, _ = S.load_model(best)
    assert meta["config"]["model"]["backbone"] == "dlib_face_resnet" and model.embedding_dim == 128
    a, b = sorted((faces / "s10").glob("*.pgm"))[:2]
    c = sorted((faces / "s11").glob("*.pgm"))[0]
    same, other = S.verify(run, a, b), S.verify(run, a, c)
    assert same["same"] and not other["same"] and same["distance"] < other["distance"]
    r = run_cli("export", best, "--out", tmp_path / "m.onnx")
    assert r.returncode == EXIT_INPUT and "not a PyTorch graph" in r.stderr + r.stdout
    assert not (tmp_path / "m.onnx").exists()
