"""What every lab's command line shares: the consoles, the one-line error path (`friendly`), the
typed options every train command takes, and ONE config builder.

Precedence when a command builds its config: defaults < base (a checkpoint's own config) < the
--config YAML (a path or a packaged `lab/name`, with its `_base_` chain) < lab defaults a flag implies
< flags < trailing `section.field=value` overrides.
"""
from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Optional[str], typer.Option(
    "--config", "-c", help="YAML config: a packaged name (e.g. cifar/fast) or a file path.")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="section.field=value overrides, e.g. train.lr=3e-4")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")]
OutDirOpt = Annotated[Optional[Path], typer.Option("--out", help="Output folder.")]
# engine flags shared by every lab's train command
EpochsOpt = Annotated[Optional[int], typer.Option(help="Passes over the training split (train.epochs).")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="Total optimizer steps (budget).")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Training batch size per device (train.batch_size).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Learning rate; the peak for one-cycle (train.lr).")]
AccelOpt = Annotated[Optional[str], typer.Option(help="cpu, gpu, auto.")]
DevicesOpt = Annotated[Optional[str], typer.Option(help="Number of devices/processes.")]
StrategyOpt = Annotated[Optional[str], typer.Option(help="auto or ddp.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(help="32-true, bf16-mixed, 16-mixed.")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Seed of init, shuffling, augmentation (train.seed).")]
DeterministicOpt = Annotated[Optional[bool], typer.Option(
    "--deterministic/--fast", help="torch deterministic algorithms (train.deterministic).")]
ResumeOpt = Annotated[Optional[Path], typer.Option(help="Run folder to continue from its last checkpoint.")]
OutOpt = Annotated[Optional[str], typer.Option(help="Folder for runs (default runs/).")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name.")]

ENGINE_OPTIONS = {"epochs": EpochsOpt, "max_steps": MaxStepsOpt, "batch_size": BatchOpt, "lr": LrOpt,
                  "accelerator": AccelOpt, "devices": DevicesOpt, "strategy": StrategyOpt, "precision": PrecisionOpt,
                  "seed": SeedOpt, "deterministic": DeterministicOpt}
"""The engine options every train command takes (`engine_options` adds them)."""

ENGINE_FLAGS = {"recipe": "train.recipe", "epochs": "train.epochs", "max_steps": "train.max_steps",
                "batch_size": "train.batch_size", "lr": "train.lr", "accelerator": "train.accelerator",
                "devices": "train.devices", "strategy": "train.strategy", "precision": "train.precision",
                "seed": "train.seed", "deterministic": "train.deterministic", "out": "out_dir", "name": "name"}
"""Flag -> config field of the engine options every lab shares; a lab adds its own on top."""


def fail(msg: str, code: int = 1):
    """Print one red error line and exit with `code`."""
    err.print(f"[bold red]error:[/bold red] {msg}", soft_wrap=True)
    raise typer.Exit(code)


def friendly(fn):
    """Known input errors become one clear line and exit code 1, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **k):
        from pydantic import ValidationError

        from vislab.core.checkpoint import CheckpointError
        from vislab.core.data.images import DataError
        from vislab.core.engine import NonFiniteLoss
        from vislab.core.models import PretrainedUnavailable
        try:
            return fn(*a, **k)
        except ValidationError as e:
            fail("invalid configuration:\n" + "\n".join(f"  {'.'.join(map(str, x['loc']))}: {x['msg']}"
                                                         for x in e.errors()))
        except (DataError, CheckpointError, PretrainedUnavailable, NonFiniteLoss, FileNotFoundError, ValueError) as e:
            fail(str(e))
    return wrapper


def floats(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers from an option ('' -> []), or one clear error naming the option."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} takes comma-separated numbers, e.g. 0.8,0.6; got {text!r}")


def choice(value: str, allowed: list[str], option: str) -> str:
    """`value` if it is one of `allowed`, else one clear error naming the option, the choices and the nearest."""
    if value in allowed:
        return value
    import difflib
    near = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]}?)" if near else ""
    fail(f"{option} must be one of {', '.join(allowed)}; got {value!r}{hint}", code=2)


ACCELERATORS = ["auto", "cpu", "gpu", "cuda", "mps"]


def check_accelerator(accelerator: str | None) -> None:
    """Fail before any data is read when --accelerator asks for hardware this machine does not have."""
    if accelerator is None:
        return
    acc = choice(accelerator.lower(), ACCELERATORS, "--accelerator")
    if acc in ("gpu", "cuda"):
        import torch
        if not torch.cuda.is_available():
            fail(f"--accelerator {accelerator}: torch sees no CUDA GPU on this machine; use --accelerator cpu "
                 "(or auto, which picks a GPU when there is one)")
    if acc == "mps":
        import torch
        if not torch.backends.mps.is_available():
            fail("--accelerator mps: Apple MPS is not available here; use --accelerator cpu or auto")


def words(text: str) -> list[str]:
    """A comma-separated option as a list of stripped, non-empty items."""
    return [w.strip() for w in text.split(",") if w.strip()]


def nest(flags: dict[str, Any], flag_map: dict[str, str]) -> dict:
    """{flag: value} -> the nested config mapping of the flags that were given (None = not given)."""
    out: dict = {}
    for k, v in flags.items():
        if v is None:
            continue
        if k not in flag_map:
            raise KeyError(f"flag {k!r} has no config field")
        if k == "devices" and isinstance(v, str) and v.isdigit():
            v = int(v)
        cur = out
        parts = flag_map[k].split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


def build_config(model_cls, flag_map: dict[str, str], config: str | Path | None, overrides: list[str] | None,
                 base: dict | None = None, implied: dict | None = None, **flags):
    """The run config of a command: defaults < base < YAML < implied (lab defaults a flag brings) < flags
    < overrides, validated by the lab's `model_cls`."""
    from vislab.core.config import deep_merge, load_config, parse_overrides, read_config
    layers = [base or {}, read_config(config) if config else {}, implied or {}, nest(flags, flag_map),
              parse_overrides(overrides)]
    merged: dict = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    fields = {field: "--" + flag.replace("_", "-") for flag, field in flag_map.items()}
    return load_config(None, merged, model=model_cls, flags=fields)


def engine_options(fn):
    """Add the shared engine options (--epochs, --max-steps, --batch-size, --lr, --accelerator, --devices,
    --strategy, --precision, --seed, --deterministic/--fast) to a command; the command receives the ones
    given as one dict, `engine`, to pass on to `build_config(..., **engine)`."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "engine"]
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
             for n, a in ENGINE_OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(*a, **k):
        engine = {n: k.pop(n) for n in ENGINE_OPTIONS if n in k}
        check_accelerator(engine.get("accelerator"))
        return fn(*a, engine=engine, **k)

    kinds = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind == p.POSITIONAL_OR_KEYWORD and
             p.default is not p.empty else p for p in own]
    wrapper.__signature__ = sig.replace(parameters=[p for p in kinds if p.kind != p.KEYWORD_ONLY]
                                        + [p for p in kinds if p.kind == p.KEYWORD_ONLY] + extra)
    return wrapper
