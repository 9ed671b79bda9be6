"""Where a Siamese checkpoint's validation threshold lives, and where an evaluation on another folder goes;
torch-free, so the CLI checks both before loading a model."""
from __future__ import annotations

import json
from pathlib import Path


def stored_verification(meta: dict, run_dir: Path | None = None) -> dict:
    """The threshold and calibration chosen on a checkpoint's own validation people: from the checkpoint
    (written by evaluate_run), else from its run folder's verification.json (older checkpoints); {} if neither."""
    if meta.get("verification"):
        return meta["verification"]
    ver = Path(run_dir) / "verification.json" if run_dir else None
    return json.loads(ver.read_text()) if ver and ver.is_file() else {}


def folder_eval_dir(run_dir: Path, root: str | Path) -> Path:
    """Default output of `evaluate --data FOLDER`: RUN/eval-FOLDERNAME, beside the run's own results."""
    return Path(run_dir) / f"eval-{Path(root).resolve().name}"
