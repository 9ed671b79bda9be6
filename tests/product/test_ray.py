"""`vislab fashion tag --ray`: the predictor as a Ray Data map_batches stage on a local 2-CPU Ray cluster
gives the same rows as the local tagger, errors included."""
from __future__ import annotations

import csv

import pytest


def test_ray_stage_matches_the_local_tagger(tiny_ckpt, catalog, tmp_path):
    pytest.importorskip("ray.data")
    import ray

    from vislab.labs.fashion.predict import Predictor
    from vislab.product.inputs import resolve_inputs
    from vislab.product.outputs import TagWriter
    from vislab.product.ray_stage import init_ray, tag_with_ray
    from vislab.product.tag import tag
    items = resolve_inputs([str(catalog)])
    local, distributed = tmp_path / "local.csv", tmp_path / "ray.csv"
    with TagWriter(local, Predictor.load(tiny_ckpt).tasks) as w:
        tag(Predictor.load(tiny_ckpt), items, w, workers=0, progress=False)
    init_ray(num_cpus=2)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        with TagWriter(distributed, Predictor.load(tiny_ckpt).tasks) as w:
            s = tag_with_ray(tiny_ckpt, items, w, batch_size=8, actors=2, progress=False)
    finally:
        ray.shutdown()
    assert s.tagged == 41 and s.errors == 3
    a, b = (list(csv.DictReader(open(p, newline=""))) for p in (local, distributed))
    assert [r["path"] for r in b] == [r["path"] for r in a]  # order kept
    tasks = Predictor.load(tiny_ckpt).tasks
    for x, y in zip(a, b):  # same labels; confidences equal up to batch-size rounding (review flags may flip
        assert bool(x["error"]) == bool(y["error"]) and x["caption"] == y["caption"]  # at a threshold's edge)
        for t in tasks:
            assert x[t] == y[t]
            if x[t]:
                assert float(x[f"{t}_confidence"]) == pytest.approx(float(y[f"{t}_confidence"]), abs=1e-3)
