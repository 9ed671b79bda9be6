"""Checkpoints: weights in safetensors with JSON metadata in the same file, written atomically.

    <run>/checkpoints/best.safetensors   lowest validation loss so far
    <run>/checkpoints/last.safetensors   end of the latest epoch
    <run>/checkpoints/last.state.pt      optimizer, scheduler, epoch, RNG: what --resume needs
    <run>/checkpoints/*.json             the metadata again, for people

Loading never unpickles code: weights come from safetensors, training state through
`torch.load(weights_only=True)`. Every write goes to a temporary file first and is moved into
place with os.replace, so a killed run leaves the previous file intact.

Reading a checkpoint's metadata (`read_meta`, `read_checked`, `resolve`) imports neither torch nor timm, so
that a command can refuse a wrong checkpoint in a fraction of a second.
"""
from __future__ import annotations

import json
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

if TYPE_CHECKING:
    import torch

from vislab.core.errors import CheckpointError  # noqa: F401  (re-exported)

FORMAT = "vislab-checkpoint-1"


def versions() -> dict[str, str]:
    import timm
    import torch

    from vislab import __version__
    return {"vislab": __version__, "torch": torch.__version__, "timm": timm.__version__,
            "python": platform.python_version()}


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it owner-only; the file gets the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """safetensors file with `meta` (JSON) in its header, plus a readable .json beside it."""
    from safetensors.torch import save_file
    path = Path(path)
    meta = {"format": FORMAT, "versions": versions(), **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    text = json.dumps(meta, default=_json_default)
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"vislab": text}))
    _atomic(path.with_suffix(".json"),
            lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, default=_json_default)))
    return path


def update_meta(path: str | Path, changes: dict[str, Any], tensors: dict[str, Any] | None = None,
                drop_prefix: str | None = None) -> dict[str, Any]:
    """Rewrite a checkpoint with `changes` merged into its metadata, atomically; weights unchanged, except that
    tensors named `drop_prefix`... are removed and `tensors` (numpy arrays) added."""
    from safetensors.numpy import load_file, save_file
    path = Path(path)
    meta = {**read_meta(path), **changes}
    old = load_file(str(path))  # numpy: no torch needed, bit-identical tensors
    tensors = {**{k: v for k, v in old.items() if not (drop_prefix and k.startswith(drop_prefix))},
               **(tensors or {})}
    text = json.dumps(meta, default=_json_default)
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata={"vislab": text}))
    _atomic(path.with_suffix(".json"),
            lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, default=_json_default)))
    return meta


def read_header(path: Path, key: str, fmt: str, what: str, tensors: bool = False) -> tuple[dict[str, Any], dict]:
    """The JSON document a vislab safetensors file keeps under metadata `key` (checked to be of format `fmt`), and
    its tensors when asked (torch), for any vislab file kind (`what`: "checkpoint", "index"). Every way the file
    can be wrong (truncated, not safetensors, another program's, bad JSON, other format) is one CheckpointError."""
    try:
        with safe_open(str(path), framework="pt" if tensors else "np") as f:
            md = f.metadata() or {}
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable vislab {what} (not safetensors, truncated or tampered "
                              f"with?): {e}; vislab never unpickles these files") from None
    if key not in md:
        raise CheckpointError(f"{path} is a safetensors file but not a vislab {what} (no {key} metadata)")
    try:
        doc = json.loads(md[key])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: {what} metadata is not valid JSON ({e})") from None
    if doc.get("format") != fmt:
        raise CheckpointError(f"{path}: unknown {what} format {doc.get('format')!r} (this vislab reads {fmt})")
    return doc, data


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return read_header(path, "vislab", FORMAT, "checkpoint")[0]


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors.torch import load_file
    meta = read_meta(path)
    try:
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: tensors cannot be read ({e})") from None


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    """load_state_dict with an error that says which keys or shapes differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{path} does not fit this model: missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]}, shape mismatches {shapes[:5]}")
    model.load_state_dict(state)


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]), "python": list(random.getstate()[1]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(s: dict[str, Any]) -> None:
    import numpy as np
    import torch
    torch.set_rng_state(s["torch"])
    np.random.set_state(("MT19937", s["numpy_keys"].numpy().astype(np.uint32), s["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(s["python"]), None))
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    import torch
    path = Path(path)
    _atomic(path, lambda tmp: torch.save(state, tmp))
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: training state cannot be loaded safely ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from None


def _json_default(o):
    import numpy as np
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def resolve(path: str | Path) -> tuple[Path, Path]:
    """(checkpoint file, run folder) from a run folder (its checkpoints/best.safetensors) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        c = p / "checkpoints" / "best.safetensors"
        if not c.is_file():
            raise FileNotFoundError(f"{p}: no checkpoints/best.safetensors (is it a vislab run folder?)")
        return c, p
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such run folder or checkpoint")
    return p, p.parent.parent


def read_checked(path: str | Path, lab: str, title: str | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint (or a run folder's best) that must belong to `lab`; any other lab's
    checkpoint is one clear error: "X is a 'cifar' checkpoint, not a fashion one"."""
    path = resolve(path)[0] if Path(path).is_dir() else Path(path)
    meta = read_meta(path)
    if meta.get("lab") != lab:
        raise CheckpointError(f"{path} is a {meta.get('lab')!r} checkpoint, not a {title or lab} one")
    return meta


def load_checked(path: str | Path, lab: str,
                 title: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint (or a run folder's best) that must belong to `lab` (`read_checked`)."""
    path = resolve(path)[0] if Path(path).is_dir() else Path(path)
    read_checked(path, lab, title)
    return load_weights(path)


LOADERS: dict[str, Any] = {}
"""lab -> function(path, device) that loads one of its checkpoints (registered by the lab)."""


def register_loader(lab: str):
    """Decorator: `vislab.load` hands checkpoints whose metadata says `lab` to this function."""
    def deco(fn):
        LOADERS[lab] = fn
        return fn
    return deco


def load_any(path: str | Path, device: str = "cpu"):
    """Load any registered lab's checkpoint (or a run folder's best) by the lab its metadata names."""
    path = resolve(path)[0]
    lab = read_meta(path).get("lab")
    if lab not in LOADERS:
        raise CheckpointError(f"{path}: no loader for lab {lab!r} (labs: {sorted(LOADERS)})")
    return LOADERS[lab](path, device=device)
