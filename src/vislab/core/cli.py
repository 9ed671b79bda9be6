"""What every lab's command line shares: the consoles, the one-line error path (`friendly`), the
typed options every train command takes, and ONE config builder.

Precedence when a command builds its config: defaults < base (a checkpoint's own config) < the
--config YAML (a path or a packaged `lab/name`, with its `_base_` chain) < lab defaults a flag implies
< flags < trailing `section.field=value` overrides.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from vislab.core.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_UNEXPECTED, EXIT_USAGE, DataError, VislabError

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Optional[str], typer.Option(
    "--config", "-c", metavar="NAME|FILE",
    help="YAML config: a packaged name (e.g. fashion/default) or a file path. [default: the lab's defaults]")]
Overrides = Annotated[Optional[list[str]], typer.Argument(
    metavar="KEY=VALUE", help="Config overrides, e.g. train.lr=3e-4 data.image_size=[128,96].",
    show_default=False)]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")]
# engine flags shared by every lab's train command
EpochsOpt = Annotated[Optional[int], typer.Option(help="Passes over the training split (train.epochs).")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="Stop after N optimizer steps in all (a fixed budget).")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Training batch size per device (train.batch_size).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Learning rate; the peak for one-cycle (train.lr).")]
AccelOpt = Annotated[Optional[str], typer.Option(metavar="auto|cpu|gpu|mps", help="Hardware to train on.")]
DevicesOpt = Annotated[Optional[str], typer.Option(metavar="N", help="Number of devices (processes with ddp).")]
StrategyOpt = Annotated[Optional[str], typer.Option(metavar="auto|ddp", help="Lightning Fabric strategy.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(metavar="32-true|bf16-mixed|16-mixed",
                                                     help="Numeric precision (mixed needs a GPU to pay off).")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Seed of init, shuffling, augmentation (train.seed).")]
DeterministicOpt = Annotated[Optional[bool], typer.Option(
    "--deterministic/--fast", help="torch deterministic algorithms (train.deterministic).")]
ResumeOpt = Annotated[Optional[Path], typer.Option(metavar="RUN", help="Run folder to continue from its last "
                                                                          "finished epoch (its own config).")]
OutOpt = Annotated[Optional[str], typer.Option(metavar="FOLDER", help="Folder for runs.")]
NameOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="Run name (a -2, -3 ... suffix when taken).")]

ENGINE_OPTIONS = {"epochs": EpochsOpt, "max_steps": MaxStepsOpt, "batch_size": BatchOpt, "lr": LrOpt,
                  "accelerator": AccelOpt, "devices": DevicesOpt, "strategy": StrategyOpt, "precision": PrecisionOpt,
                  "seed": SeedOpt, "deterministic": DeterministicOpt}
"""The engine options every train command takes (`engine_options` adds them)."""

ENGINE_FLAGS = {"recipe": "train.recipe", "epochs": "train.epochs", "max_steps": "train.max_steps",
                "batch_size": "train.batch_size", "lr": "train.lr", "accelerator": "train.accelerator",
                "devices": "train.devices", "strategy": "train.strategy", "precision": "train.precision",
                "seed": "train.seed", "deterministic": "train.deterministic", "out": "out_dir", "name": "name"}
"""Flag -> config field of the engine options every lab shares; a lab adds its own on top."""


def debug() -> bool:
    """--debug (root option) or VISLAB_DEBUG=1: errors show their full traceback."""
    return os.environ.get("VISLAB_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def fail(msg: str, code: int = EXIT_INPUT):
    """Print one red error line and exit with `code`."""
    err.print(f"[bold red]error:[/bold red] {escape(msg)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def describe(e: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) of an exception a command raised (`friendly`)."""
    from pydantic import ValidationError
    if isinstance(e, VislabError):
        return e.exit_code, str(e)
    if isinstance(e, ValidationError):
        from vislab.core.config import explain
        return EXIT_INPUT, f"invalid configuration: {explain(e, type(None))}"
    if isinstance(e, (ValueError, OSError)):  # bad values and files the user named (missing, unreadable, full disk)
        return EXIT_INPUT, str(e)
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return EXIT_UNEXPECTED, (f"unexpected {type(e).__name__}{': ' + first if first else ''}. This is a bug in vislab "
                             "or an input it does not check yet; run again with --debug (or VISLAB_DEBUG=1) for the "
                             "traceback")


def _command_path() -> str:
    """`vislab fashion train`, the command running now (for the one line an unexpected error gets)."""
    try:
        from typer._click.globals import get_current_context  # typer >= 0.25 vendors click
    except ImportError:  # pragma: no cover
        from click import get_current_context
    ctx = get_current_context(silent=True)
    return ctx.command_path if ctx else "vislab"


def friendly(fn):
    """Every error a command raises becomes one line (`describe`): bad input exits 1, bad usage 2, anything
    unexpected 3 and Ctrl-C 130; with --debug (or VISLAB_DEBUG=1) the traceback is shown instead."""
    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except (typer.Exit, typer.Abort, typer.TyperException):  # typer's own: exit codes, usage errors
            raise
        except KeyboardInterrupt:
            if debug():
                raise
            fail("interrupted (a training run keeps its last finished epoch: continue it with --resume RUN)",
                 EXIT_INTERRUPTED)
        except Exception as e:
            if debug():
                raise
            code, msg = describe(e)
            fail(f"{_command_path()}: {msg}" if code == EXIT_UNEXPECTED else " ".join(msg.split("\n")), code)
    wrapper.friendly = True
    return wrapper


def floats(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers from an option ('' -> []), or one clear error naming the option."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} takes comma-separated numbers, e.g. 0.8,0.6; got {text!r}", code=EXIT_USAGE)


def choice(value: str, allowed: list[str], option: str) -> str:
    """`value` if it is one of `allowed`, else one clear error naming the option, the choices and the nearest."""
    if value in allowed:
        return value
    import difflib
    near = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]}?)" if near else ""
    fail(f"{option} must be one of {', '.join(allowed)}; got {value!r}{hint}", code=EXIT_USAGE)


ACCELERATORS = ["auto", "cpu", "gpu", "cuda", "mps"]


def cuda_possible() -> bool:
    """False when this machine certainly has no NVIDIA GPU (Linux without the NVIDIA driver, macOS), known
    without importing torch; True means torch has to be asked."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/dxg")  # WSL 2
                or any(Path("/dev").glob("nvidia[0-9]*")))
    return True


def check_accelerator(accelerator: str | None) -> None:
    """Fail before any data is read when --accelerator asks for hardware this machine does not have (without
    importing torch when the answer is plain: no NVIDIA driver, or not a Mac)."""
    if accelerator is None:
        return
    acc = choice(accelerator.lower(), ACCELERATORS, "--accelerator")
    if acc in ("gpu", "cuda"):
        if not cuda_possible() or not _torch().cuda.is_available():
            fail(f"--accelerator {accelerator}: there is no CUDA GPU on this machine (torch sees none); use "
                 "--accelerator cpu (or auto, which picks a GPU when there is one)")
    if acc == "mps":
        if sys.platform != "darwin" or not _torch().backends.mps.is_available():
            fail("--accelerator mps: Apple MPS is not available here; use --accelerator cpu or auto")


def _torch():
    import torch
    return torch


def checkpoint_arg(path: str | Path, lab: str, title: str | None = None) -> tuple[Path, dict]:
    """(checkpoint file, its metadata) from a run folder (its best checkpoint) or a checkpoint file that must be
    `lab`'s; fails in milliseconds (no torch) for a path that is missing, not vislab's or another lab's."""
    from vislab.core.checkpoint import read_checked, resolve
    file = resolve(path)[0]
    return file, read_checked(file, lab, title)


def require_path(path: str | Path, flag: str, kind: str = "folder") -> Path:
    """A data folder or file a flag (or config field) names, checked before any heavy import or data read."""
    p = Path(path).expanduser()
    if not (p.is_dir() if kind == "folder" else p.is_file()):
        raise DataError(f"{flag} {p}: no such {kind}")
    return p


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
