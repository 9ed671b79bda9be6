"""The product layer: what a shop does with a trained fashion model, on the lab's own `Predictor`.

    tag.py, inputs.py, outputs.py   `vislab fashion tag`: a catalog (folder, glob or CSV) -> tags.csv / .jsonl
    ray_stage.py                    the same predictor as a Ray Data `map_batches` stage (`--ray`)
    serve/                          `vislab serve`: FastAPI service, micro-batching, limits, web page
"""
