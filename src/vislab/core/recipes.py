"""Recipe registry: named presets for every `TrainConfig` field a config leaves as null.

Labs register their recipes when their config module is imported (`vislab` imports every lab's
config on start), timm-style:

    register_recipe("fast", lab="cifar", optimizer="sgd", lr=0.2, epochs=16, ...)

A recipe starts from `COMMON` and states what differs. Any field set explicitly in a config wins.
"""
from __future__ import annotations

from typing import Any

COMMON: dict[str, Any] = dict(lr=1e-3, epochs=5, batch_size=64, label_smoothing=0.0, momentum=0.9, nesterov=True,
                              gamma=0.1, step_size=10, tta=False, weight_decay=0.0, backbone_lr_mult=1.0,
                              grad_clip=None, optimizer="adam", scheduler="constant")
"""What every recipe starts from."""

RECIPES: dict[str, dict[str, Any]] = {}
"""name -> every preset field (COMMON with the recipe's changes)."""

_LABS: dict[str, str] = {}


def register_recipe(name: str, lab: str, doc: str = "", **fields: Any) -> dict[str, Any]:
    """Register recipe `name` of `lab`: COMMON updated with `fields`. Re-registering the same
    recipe (a module imported twice) is allowed only with identical fields."""
    unknown = set(fields) - set(COMMON)
    if unknown:
        raise ValueError(f"recipe {name!r}: unknown fields {sorted(unknown)}; fields are {sorted(COMMON)}")
    full = COMMON | fields
    if name in RECIPES and (RECIPES[name] != full or _LABS[name] != lab):
        raise ValueError(f"recipe {name!r} registered twice with different fields")
    RECIPES[name] = full
    _LABS[name] = lab
    _DOCS[name] = doc
    return full


_DOCS: dict[str, str] = {}


def recipes(lab: str | None = None) -> list[str]:
    """Registered recipe names, all or one lab's, sorted."""
    return sorted(n for n in RECIPES if lab is None or _LABS[n] == lab)


def check_recipe(name: str, lab: str | None = None) -> str:
    """`name` if it is a registered recipe (of `lab`, when given), else a ValueError listing that lab's recipes
    and the nearest name."""
    import difflib
    own = recipes(lab)
    if name in own:
        return name
    where = f"the {lab} lab's recipes are" if lab else "recipes are"
    if name in RECIPES:
        raise ValueError(f"recipe {name!r} belongs to the {_LABS[name]} lab; {where} {', '.join(own)}")
    near = difflib.get_close_matches(name, own, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]}?)" if near else ""
    raise ValueError(f"unknown recipe {name!r}; {where} {', '.join(own)}{hint}")


def recipe_lab(name: str) -> str:
    """The lab that registered recipe `name`."""
    return _LABS[name]


def recipe_doc(name: str) -> str:
    """The one-line description a recipe was registered with."""
    return _DOCS.get(name, "")
