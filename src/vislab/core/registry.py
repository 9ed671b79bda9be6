"""The model registry, timm-style: `@register_model("name")` on a factory, `create_model("name", **kw)`.
A name that is not registered is built as a timm model (`vislab.core.models.create_backbone`). Labs announce
their models with `register_model_module` so that nothing heavy is imported before a model is built."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_REGISTRY: dict[str, Callable[..., Any]] = {}
_MODULES: dict[str, str] = {}  # name -> module whose import registers it (labs announce their models lazily)


def register_model(name: str):
    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn
    return deco


def register_model_module(name: str, module: str) -> None:
    """Announce that importing `module` registers model `name`: `create_model(name)` imports it on first use,
    so `import vislab` stays light (no lab model code, torch or timm until a model is built)."""
    _MODULES[name] = module


def list_models() -> list[str]:
    return sorted(set(_REGISTRY) | set(_MODULES))


def create_model(name: str, **kwargs) -> Any:
    """A registered vislab model, else any timm model name."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    from vislab.core.models import create_backbone
    return create_backbone(name, **kwargs)
