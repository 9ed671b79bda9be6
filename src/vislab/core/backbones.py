"""Backbone names, checked without importing torch or timm: a config naming an unknown timm model fails
while the config is read, in milliseconds, instead of after the data has been prepared.

`timm_names()` reads the names timm registers (`@register_model` functions and the deprecated aliases
of `register_model_deprecations`) from timm's installed source files; a test checks the set against
`timm.list_models()` plus the aliases, so a timm release that changes how it registers models is caught.
"""
from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from pathlib import Path

_REGISTERED = re.compile(r"@register_model(?:\([^)]*\))?\s*\n\s*def\s+(\w+)")
_DEPRECATIONS = re.compile(r"register_model_deprecations\(\s*__name__\s*,\s*\{(.*?)\}\s*\)", re.S)
_KEY = re.compile(r"['\"]([\w.\-]+)['\"]\s*:")
HUB_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")
"""Names timm resolves elsewhere (a Hugging Face repository, a local folder): not checked here."""


@functools.lru_cache(maxsize=1)
def timm_names() -> frozenset[str]:
    """Every model name the installed timm registers (empty when timm is not installed)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        return frozenset()
    names: set[str] = set()
    for path in (Path(spec.origin).parent / "models").glob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        names.update(_REGISTERED.findall(text))
        for block in _DEPRECATIONS.findall(text):
            names.update(_KEY.findall(block))
    return frozenset(names)


def check_backbone(name: str) -> str:
    """`name` if timm knows it (a pretrained tag after '.' is allowed: `convnext_tiny.fb_in22k`), else a
    ValueError that names the nearest known models."""
    if name.startswith(HUB_PREFIXES):
        return name
    names = timm_names()
    arch = name.split(".", 1)[0]
    if not names or arch in names:
        return name
    near = difflib.get_close_matches(arch, sorted(names), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise ValueError(f"unknown timm backbone {name!r}; {hint}(timm {len(names)} models; "
                     "python -c \"import timm; print(timm.list_models('*lite*'))\" lists them)")
