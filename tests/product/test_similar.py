"""Similar-product search: the index holds the model's normalised features of every readable photo, queries
rank like a brute-force cosine computed here, the file round-trips and refuses tampering, and the CLI and the
service answer."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from vislab.core.errors import CheckpointError, DataError, UsageError


def photos(catalog):
    return sorted(p for p in catalog.rglob("*.jpg") if p.stat().st_size > 1000)


def test_index_holds_every_readable_photo_and_ranks_like_brute_force(catalog_index, tiny_ckpt, catalog):
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.index import CatalogIndex
    idx = CatalogIndex.load(catalog_index)
    files = photos(catalog)
    assert len(idx) == len(files) + 1  # the 40 photos and alpha.png; empty, text and truncated files left out
    assert sorted(s["path"].rsplit("/", 1)[-1] for s in idx.meta["skipped"]) == ["empty.jpg", "notes.png",
                                                                                 "truncated.jpg"]
    assert set(idx.ids) == {p.stem for p in files} | {"alpha"}
    assert torch.linalg.norm(idx.embeddings, dim=1) == pytest.approx(torch.ones(len(idx)), abs=1e-6)
    p = Predictor.load(tiny_ckpt)
    feats, preds = p.embed_arrays(p.preprocess(files[:5]))
    assert [x.labels for x in preds] == [x.labels for x in p.predict_batch(files[:5])]
    # brute force here, from the predictor's features of every indexed photo (alpha.png: an RGBA copy of one)
    every = files + [catalog / "alpha.png"]
    gallery = torch.nn.functional.normalize(torch.from_numpy(p.embed_arrays(p.preprocess(every))[0]), dim=1)
    q = torch.nn.functional.normalize(torch.from_numpy(feats), dim=1)
    sims = q @ gallery.T
    want = sims.topk(4, dim=1)
    hits = idx.search(idx.project(feats), k=4)
    for qi, row in enumerate(hits):  # the same top scores (near-ties may swap: the index stores float16)
        assert [h.score for h in row] == pytest.approx(want.values[qi].tolist(), abs=3e-3)
        true = {str(f): float(sims[qi, j]) for j, f in enumerate(every)}
        assert [h.score for h in row] == pytest.approx([true[h.path] for h in row], abs=3e-3)
    assert [h[0].path for h in hits] == [str(f) for f in files[:5]]  # each photo finds itself first
    assert all(0.999 < h[0].score <= 1.0 for h in hits)  # a cosine: never above 1
    assert hits[0][0].labels == preds[0].labels
    excl = idx.search(idx.project(feats[:1]), k=3, exclude=[{idx.paths.index(str(files[0]))}])
    assert str(files[0]) not in [h.path for h in excl[0]]


def test_pca_index_and_file_errors(tiny_ckpt, catalog, tmp_path):
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.index import CatalogIndex, build_index, read_index
    from vislab.product.inputs import resolve_inputs
    p = Predictor.load(tiny_ckpt)
    idx = build_index(p, resolve_inputs([str(catalog / "shoes")]), pca=8, workers=0, progress=False)
    assert idx.embeddings.shape == (20, 8) and idx.meta["pca"] == 8 and idx.components.shape == (p.net.num_features, 8)
    path = idx.save(tmp_path / "pca.index")
    back = CatalogIndex.load(path)
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[4]
    assert back.search(back.embed(p, [shoe]), 1)[0][0].path == str(shoe)
    with pytest.raises(UsageError, match="--pca 64: must lie between 1 and"):
        build_index(p, resolve_inputs([str(catalog / "shoes")]), pca=64, workers=0, progress=False)
    with pytest.raises(UsageError, match="this index takes"):
        back.project(np.zeros((1, 5), np.float32))
    raw = path.read_bytes()
    (tmp_path / "cut.index").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="not a readable vislab index"):
        read_index(tmp_path / "cut.index")
    with pytest.raises(CheckpointError, match="not a vislab index"):
        read_index(tiny_ckpt)
    with pytest.raises(DataError, match="does not exist"):
        read_index(tmp_path / "nope.index")
    with pytest.raises(DataError, match="nothing to index"):
        build_index(p, resolve_inputs([str(catalog / "empty.jpg")]), workers=0, progress=False)


def test_cli_index_and_similar(tiny_ckpt, catalog, tmp_path):
    out = tmp_path / "cat.index"
    res = run("fashion", "index", tiny_ckpt, catalog, "--out", out, "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "indexed 41 images" in res.stdout and "3 unreadable left out" in res.stdout
    res = run("fashion", "index", tiny_ckpt, catalog, "--out", out)
    assert res.returncode == 2 and "--overwrite" in res.stderr
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[2]
    res = run("fashion", "similar", out, shoe, "-k", "3", "--json", "--grid", tmp_path / "g.png")
    assert res.returncode == 0, res.stderr[-2000:]
    (r,) = json.loads(res.stdout)
    assert [m["rank"] for m in r["matches"]] == [1, 2, 3] and r["matches"][0]["path"] == str(shoe)
    assert r["matches"][0]["score"] > 0.99 >= r["matches"][1]["score"] - 0.01 and (tmp_path / "g.png").is_file()
    res = run("fashion", "similar", out, shoe)
    assert res.returncode == 0 and shoe.stem in res.stdout and "most similar" in res.stdout
    res = run("fashion", "similar", out, tmp_path / "nope.jpg")
    assert res.returncode == 1 and "no such file" in res.stderr
    res = run("fashion", "similar", tiny_ckpt, shoe)
    assert res.returncode == 1 and "not a vislab index" in res.stderr


def test_service_similar_endpoint_and_catalog_images(catalog_index, tiny_ckpt, catalog):
    from fastapi.testclient import TestClient

    from vislab.product.serve.app import create_app
    from vislab.product.serve.settings import ServeSettings
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[1]
    with TestClient(create_app(tiny_ckpt, ServeSettings(index=str(catalog_index)))) as c:
        t0 = time.monotonic()
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() - t0 < 60
            time.sleep(0.05)
        from vislab.labs.fashion.predict import Predictor
        assert c.get("/v1/model").json()["similar"] == {"items": 41, "dim": Predictor.load(tiny_ckpt).net.num_features}
        r = c.post("/v1/similar?k=5", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["matches"]) == 5 and body["matches"][0]["id"] == shoe.stem
        assert body["tags"]["caption"] and body["filename"] == shoe.name
        img = c.get(body["matches"][0]["image"])
        assert img.status_code == 200 and img.content == shoe.read_bytes()
        assert c.get("/v1/catalog/999/image").status_code == 404
        assert c.post("/v1/similar?k=0", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")}
                      ).status_code == 422
        tag = c.post("/v1/tag", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")}).json()
        assert tag["caption"] == body["tags"]["caption"]  # one forward pass gives both
    with TestClient(create_app(tiny_ckpt)) as c:
        while c.get("/readyz").status_code != 200:
            time.sleep(0.05)
        assert c.get("/v1/model").json()["similar"] is None
        r = c.post("/v1/similar", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")})
        assert r.status_code == 404 and "--index" in r.json()["detail"]
