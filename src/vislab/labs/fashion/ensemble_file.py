"""The ensemble file (`vislab fashion ensemble`): its format, its members' checks and the checkpoint-shaped
metadata commands read, without torch, so that a command refuses a bad file in milliseconds.

A JSON document: the members (paths relative to the file, SHA-256, backbone, image size, whether each has a
neighbour vote), the classes, the image size photos are decoded at (the largest member's), the review thresholds
chosen on the validation split and the validation (and, when asked, test) scores of the ensemble and each member.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vislab.core import checkpoint as ckpt
from vislab.core.errors import CheckpointError, UsageError
from vislab.labs.fashion import refit
from vislab.labs.fashion.config import FashionRunConfig, split_differs

FORMAT = "vislab-fashion-ensemble-1"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_ensemble(path: str | Path) -> bool:
    """Whether `path` names an ensemble file (a .json file; `read` says what is wrong with a bad one)."""
    p = Path(path)
    return p.suffix.lower() == ".json" and not p.is_dir()


def check_members(paths: list[str | Path], review_from: str | Path | None = None) -> list[tuple[Path, dict]]:
    """(checkpoint file, metadata) of each member, read without torch; one clear error for fewer than two, another
    lab's checkpoint, other tasks or classes, or other data or split (the validation images that choose the review
    thresholds must be held out from every member). With `review_from` (an ensemble file of the members' refit
    sources) every member must be a refit of that file's member in the same place (`check_refits`)."""
    if len(paths) < 2:
        raise UsageError(f"an ensemble needs at least two checkpoints, got {len(paths)}")
    members = []
    for p in paths:
        try:
            file = ckpt.resolve(p)[0]
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
        members.append((file, ckpt.read_checked(file, "fashion")))
        if review_from is None:
            refit.refuse(members[-1][1], f"ensemble member {file} (the ensemble chooses its review thresholds on "
                                         "the validation split; an ensemble of refits takes them from its sources' "
                                         "ensemble file: --review-from)")
    first_file, first = members[0]
    first_data = FashionRunConfig.model_validate(first["config"]).data
    for file, meta in members[1:]:
        if meta["encoders"] != first["encoders"]:
            raise CheckpointError(f"{file} predicts other attributes or classes than {first_file}: an ensemble "
                                  f"averages the same classes")
        differ = split_differs(FashionRunConfig.model_validate(meta["config"]).data, first_data)
        if differ:
            raise CheckpointError(f"{file} was trained on other data or another split than {first_file} (data."
                                  f"{', data.'.join(differ)} differ): one's validation images are the other's "
                                  f"training images")
    if len({f.resolve() for f, _ in members}) < len(members):
        raise UsageError("the same checkpoint is named twice")
    if review_from is not None:
        check_refits(members, review_from)
    return members


def check_refits(members: list[tuple[Path, dict]], review_from: str | Path) -> dict:
    """The ensemble file of the refit members' sources (`--review-from`), whose review thresholds an ensemble of
    refits takes over: one clear error unless member i is a refit of its member i (the validation images chose
    the sources' thresholds, and are the refits' training images)."""
    doc, sources = read(review_from, verify=False)
    if not doc.get("review"):
        raise UsageError(f"--review-from {review_from}: the file has no review thresholds")
    if len(sources) != len(members):
        raise UsageError(f"--review-from {review_from} has {len(sources)} members, the ensemble {len(members)}")
    for (file, meta), src in zip(members, sources):
        source = ((meta.get("config") or {}).get("refit") or {}).get("source")
        if not source or Path(source).resolve() != src.resolve():
            what = f"a refit of {source}" if source else "not a refit"
            raise UsageError(f"--review-from {review_from}: member {file} is {what}, not of the file's member in "
                             f"its place ({src}); name the refits in the order of their sources")
    return doc


def largest_size(metas: list[dict]) -> tuple[int, int]:
    return max((tuple(m["image_size"]) for m in metas), key=lambda s: (s[0] * s[1], s))


def read(path: str | Path, verify: bool = True) -> tuple[dict, list[Path]]:
    """(the file's document, its members' checkpoint files); checks the format, that every member exists and, with
    `verify`, that its SHA-256 is the one recorded when the ensemble was built."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ensemble file {path} does not exist")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a vislab ensemble file (not JSON: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vislab ensemble file (format {FORMAT}); `vislab fashion ensemble` "
                              f"writes one")
    files = []
    for m in doc["members"]:
        file = (path.parent / m["path"]).resolve()
        if not file.is_file():
            raise CheckpointError(f"{path}: member {m['path']} does not exist (resolved to {file})")
        if verify and sha256(file) != m["sha256"]:
            raise CheckpointError(f"{path}: member {m['path']} changed since the ensemble was built (SHA-256 "
                                  f"differs): build the ensemble again")
        files.append(file)
    return doc, files


def meta_of(doc: dict) -> dict:
    """Checkpoint-shaped metadata of an ensemble (what `predict`, `tag` and `serve` read: encoders, image size,
    review thresholds, a backbone name)."""
    backbone = " + ".join(f"{m['backbone']}@{m['image_size'][0]}x{m['image_size'][1]}" for m in doc["members"])
    return {"lab": "fashion", "backbone": f"ensemble({backbone})", "image_size": list(doc["image_size"]),
            "encoders": doc["encoders"], "tasks": list(doc["encoders"]), "review": doc.get("review"),
            "versions": doc.get("versions", {}), "config": {}, "ensemble": doc}


def refuse(path: str | Path, what: str) -> None:
    """One clear error when a command that takes one network (`what`: explain, export) is given an ensemble."""
    if is_ensemble(path):
        doc, _ = read(path, verify=False)
        names = ", ".join(m["path"] for m in doc["members"])
        raise UsageError(f"{path} is an ensemble of {len(doc['members'])} checkpoints; {what} takes one network: "
                         f"give one of its members ({names})")


def relative(file: Path, folder: Path) -> str:
    return os.path.relpath(file.resolve(), folder.resolve())
