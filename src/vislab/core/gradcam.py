"""Grad-CAM and Grad-CAM++ on forward hooks, for any model whose outputs are logits (one tensor, or a dict of
tensors: one per task). One forward pass; one gradient per task, with respect to the target layer's output.

    cam = GradCAM(net, layer="auto")                    # or a module name, e.g. "backbone.blocks.4"
    maps = cam(x, {"gender": None, "baseColour": [3]})  # None: the predicted class; {task: CamResult}
    maps["gender"].maps                                  # (N, H, W) in [0, 1], at the input's resolution

Grad-CAM weighs each channel of the target layer's activation A by the spatial mean of d(score)/dA and keeps
the positive part of the weighted sum (Selvaraju et al., 2017); Grad-CAM++ weighs with the positive gradients
and per-position coefficients from their second and third powers (Chattopadhay et al., 2018).

The default layer ("auto") is the deepest stage whose map is at least `min_side` pixels on its short side:
for EfficientNet-Lite at 96x72 that is the last stride-16 stage (6x5), finer than the final 3x3 map; at 224
pixels it is the final stage. Stages are timm's `feature_info` where the model (or its `backbone`) has it,
else the children of its `stem` / `features` / `blocks` containers."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import UsageError

METHODS = ("gradcam", "gradcam++")


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Candidate target layers, in forward order."""
    for prefix, m in (("", model), ("backbone.", getattr(model, "backbone", None))):
        info = getattr(m, "feature_info", None) if m is not None else None
        if info:
            names = info.module_name() if hasattr(info, "module_name") else [d["module"] for d in info]
            out = [(prefix + n, m.get_submodule(n)) for n in names]
            for extra in ("conv_head", "bn2"):  # timm EfficientNets: the 1x1 head conv after the last stage
                if isinstance(getattr(m, extra, None), nn.Module) and not isinstance(getattr(m, extra), nn.Identity):
                    out.append((prefix + extra, getattr(m, extra)))
            return out
    out: list[tuple[str, nn.Module]] = []
    for attr in ("stem", "features", "blocks"):
        c = getattr(model, attr, None)
        if isinstance(c, nn.Sequential) and attr != "stem":
            out += [(f"{attr}.{i}", sub) for i, sub in enumerate(c)]
        elif isinstance(c, nn.Module):
            out.append((attr, c))
    return out


def _sizes(model: nn.Module, modules: Sequence[tuple[str, nn.Module]], x: torch.Tensor,
           forward: Callable) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name):
        def hook(_m, _i, out):  # returns None: a forward hook's return value would replace the output
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, tuple(out.shape))
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in modules]
    try:
        with torch.no_grad():
            forward(model, x[:1])
    finally:
        for h in hooks:
            h.remove()
    return shapes


def choose_layer(model: nn.Module, x: torch.Tensor, min_side: int = 5,
                 forward: Callable | None = None) -> tuple[str, nn.Module]:
    """The deepest stage whose output map is at least `min_side` pixels on its short side (the coarsest when
    none is)."""
    forward = forward or (lambda m, v: m(v))
    modules = stage_modules(model)
    shapes = _sizes(model, modules, x, forward)
    maps = [(n, m) for n, m in modules if len(shapes.get(n, ())) == 4]
    if not maps:
        raise UsageError(f"{type(model).__name__} has no convolutional stage to explain (Grad-CAM needs a "
                         "spatial feature map)")
    wide = [(n, m) for n, m in maps if min(shapes[n][2:]) >= min_side]
    return wide[-1] if wide else maps[-1]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        known = ", ".join(n for n, _ in stage_modules(model)) or "none"
        raise UsageError(f"--layer {name!r}: no such module in {type(model).__name__} (stages: {known})") from None


@dataclass
class CamResult:
    maps: torch.Tensor
    """(N, H, W) float in [0, 1] at the input's resolution (each map divided by its maximum)."""
    classes: torch.Tensor
    """(N,) the class each map explains."""
    scores: torch.Tensor
    """(N,) that class's softmax probability."""
    layer: str
    grid: tuple[int, int] = (0, 0)
    """The target layer's map size (height, width) the maps were upsampled from."""


class GradCAM:
    def __init__(self, model: nn.Module, layer: str | nn.Module = "auto", method: str = "gradcam",
                 forward: Callable | None = None, min_side: int = 5):
        if method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
        self.model, self.method, self.min_side = model.eval(), method, min_side
        self.forward = forward or (lambda m, v: m(v))
        self.layer = layer

    def _target(self, x: torch.Tensor) -> tuple[str, nn.Module]:
        if isinstance(self.layer, nn.Module):
            return type(self.layer).__name__, self.layer
        if self.layer == "auto":
            return choose_layer(self.model, x, self.min_side, self.forward)
        return self.layer, find_layer(self.model, self.layer)

    def __call__(self, x: torch.Tensor, targets: Mapping[str, Sequence[int] | None] | None = None
                 ) -> dict[str, CamResult]:
        """Maps per task (a plain-logits model has the one task "class") for the classes in `targets`
        ({task: [class per image] or None for the predicted one}; None: every task, predicted classes)."""
        name, layer = self._target(x)
        store: dict[str, torch.Tensor] = {}
        def keep(_m, _i, out):
            store["a"] = out

        hook = layer.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                x = x.detach().float().requires_grad_(True)  # the graph reaches the layer even if frozen
                out = self.forward(self.model, x)
                logits = out if isinstance(out, Mapping) else {"class": out}
                targets = dict.fromkeys(logits) if targets is None else dict(targets)
                unknown = [t for t in targets if t not in logits]
                if unknown:
                    raise UsageError(f"--task {unknown[0]!r}: the model's tasks are {', '.join(logits)}")
                act = store["a"]
                results = {}
                for i, (task, cls) in enumerate(targets.items()):
                    z = logits[task].float()
                    c = z.argmax(1) if cls is None else torch.as_tensor(list(cls), device=z.device).long()
                    score = z.gather(1, c[:, None]).sum()
                    (g,) = torch.autograd.grad(score, act, retain_graph=i < len(targets) - 1)
                    results[task] = CamResult(self._map(act.detach().float(), g.float(), x.shape[-2:]),
                                              c.detach().cpu(), z.softmax(1).gather(1, c[:, None])[:, 0].detach().cpu(),
                                              name, tuple(act.shape[-2:]))
        finally:
            hook.remove()
        return results

    def _map(self, a: torch.Tensor, g: torch.Tensor, size) -> torch.Tensor:
        if self.method == "gradcam":
            w = g.mean((2, 3), keepdim=True)
        else:  # Grad-CAM++; 1e-6 in the denominator, as the grad-cam package has it (tiny gradients otherwise
            # make alpha 1/2 everywhere and the weights plain sums of positive gradients)
            g2, g3 = g.pow(2), g.pow(3)
            denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3 + 1e-6
            alpha = torch.where(g != 0, g2 / denom, torch.zeros_like(g))
            w = (alpha * g.clamp_min(0)).sum((2, 3), keepdim=True)
        cam = (w * a).sum(1, keepdim=True).clamp_min(0)
        cam = F.interpolate(cam, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        return (cam / peak).cpu()


def _masked(images: torch.Tensor, pick: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 3, H, W) with the pixels of `pick` ((N, H*W) bool) set to `fill` (3,)."""
    n, c, h, w = images.shape
    keep = ~pick.view(n, 1, h, w)
    return torch.where(keep, images, fill.view(1, c, 1, 1).to(images.dtype))


@torch.no_grad()
def _scores(model, forward, x: torch.Tensor, task: str, classes: torch.Tensor) -> torch.Tensor:
    out = forward(model, x)
    z = (out if isinstance(out, Mapping) else {"class": out})[task].float()
    return z.softmax(1).gather(1, classes[:, None].to(z.device))[:, 0].cpu()


BASELINES = ("blobs", "pixels")


def _random_pick(n: int, h: int, w: int, k: int, grid: tuple[int, int], baseline: str, gen) -> torch.Tensor:
    """(n, h*w) bool: k random pixels per image, scattered ("pixels") or as blobs shaped like the maps
    ("blobs": a random map at the layer's resolution, upsampled the same way, its top k pixels)."""
    if baseline == "pixels":
        r = torch.rand(n, h * w, generator=gen)
    else:
        r = F.interpolate(torch.rand(n, 1, *grid, generator=gen), size=(h, w), mode="bilinear",
                          align_corners=False).flatten(1)
    return torch.zeros(n, h * w, dtype=torch.bool).scatter_(1, r.argsort(1, descending=True)[:, :k], True)


def deletion_test(cam: GradCAM, images: torch.Tensor, normalise: Callable[[torch.Tensor], torch.Tensor],
                  fraction: float = 0.2, fill: Sequence[int] = (255, 255, 255), seed: int = 0,
                  batch_size: int = 64, tasks: Sequence[str] | None = None,
                  baseline: str = "blobs") -> dict[str, dict[str, float]]:
    """Does the map point at what the model uses? For each image and task, paint the `fraction` most salient
    pixels (by the map of the predicted class) with `fill`, and separately as many random pixels, then read
    the predicted class's confidence again. A meaningful map drops it more than random pixels do.

    The random pixels are blobs shaped like the maps by default (`baseline="blobs"`): scattered single pixels
    ("pixels") are noise the model never saw, which costs confidence wherever it lands, so they are a harder
    baseline for any map made of smooth regions.

    Returns per task: the mean confidence before (`confidence`), after removing salient / random pixels, the
    two drops, and `salient_wins` (the share of images whose salient drop exceeds their random drop)."""
    if not 0 < fraction < 1:
        raise UsageError(f"the deletion fraction must lie between 0 and 1, got {fraction}")
    if baseline not in BASELINES:
        raise UsageError(f"the deletion baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    gen = torch.Generator().manual_seed(seed)
    fill_t = torch.tensor(list(fill), dtype=torch.uint8)
    sums: dict[str, dict[str, float]] = {}
    n_total = 0
    for i in range(0, len(images), batch_size):
        u8 = torch.as_tensor(images[i:i + batch_size])
        n, _, h, w = u8.shape
        k = max(1, int(round(fraction * h * w)))
        res = cam(normalise(u8), None if tasks is None else dict.fromkeys(tasks))
        rand_pick = _random_pick(n, h, w, k, next(iter(res.values())).grid, baseline, gen)
        for task, r in res.items():
            top = r.maps.flatten(1).argsort(1, descending=True)[:, :k]
            sal_pick = torch.zeros(n, h * w, dtype=torch.bool).scatter_(1, top, True)
            s_sal = _scores(cam.model, cam.forward, normalise(_masked(u8, sal_pick, fill_t)), task, r.classes)
            s_rand = _scores(cam.model, cam.forward, normalise(_masked(u8, rand_pick, fill_t)), task, r.classes)
            acc = sums.setdefault(task, {"confidence": 0.0, "salient_removed": 0.0, "random_removed": 0.0,
                                         "salient_wins": 0.0})
            acc["confidence"] += float(r.scores.sum())
            acc["salient_removed"] += float(s_sal.sum())
            acc["random_removed"] += float(s_rand.sum())
            acc["salient_wins"] += float(((r.scores - s_sal) > (r.scores - s_rand)).sum())
        n_total += n
    out = {}
    for task, acc in sums.items():
        m = {k: v / max(n_total, 1) for k, v in acc.items()}
        m["drop_salient"] = m["confidence"] - m["salient_removed"]
        m["drop_random"] = m["confidence"] - m["random_removed"]
        m["images"] = n_total
        m["fraction"] = fraction
        m["baseline"] = baseline
        out[task] = m
    return out
