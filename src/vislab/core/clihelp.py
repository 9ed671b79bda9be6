"""Help that teaches: every option shows its default (read from the lab's run config, so the help never
drifts from the code), readable metavars instead of Python types, and each command ends with examples.

A lab command declares where its flags land and how it is used:

    @app.command("train")
    @documented(FashionRunConfig, FLAGS, "vislab fashion train -c fashion/default",
                none={"data": "the synthetic demo data"})
    def train_cmd(...): ...

and `polish(click_group)` (run once by `vislab.cli.command()`, for the terminal and the docs alike)
rewrites the click tree: `--epochs N  Passes over the training split. [default: 5, from recipe tuned]`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args


@dataclass
class HelpSpec:
    model: type | None
    """The lab's run config class whose defaults the help shows."""
    flags: Mapping[str, str]
    """option name -> dotted config field."""
    examples: Sequence[str] = ()
    none: Mapping[str, str] = field(default_factory=dict)
    """option name -> what a None default means (e.g. data -> "the synthetic demo data")."""


def documented(model: type | None, flags: Mapping[str, str] | None = None, *examples: str,
               none: Mapping[str, str] | None = None):
    """Decorator: the command's options show the defaults of `model`'s fields (via `flags`), its help ends
    with `examples`."""
    def deco(fn):
        fn.vislab_help = HelpSpec(model, dict(flags or {}), list(examples), dict(none or {}))
        return fn
    return deco


def _field(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def format_default(value: Any) -> str | None:
    """A config value as the help shows it: (96, 72) -> 96x72, lists comma-joined, None -> None."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return f"{value[0]}x{value[1]}"
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


COMMON_NONE = {"max_steps": "no limit (the epochs decide)", "resume": "a new run"}
"""What a None default means for the options every lab shares."""


def config_defaults(spec: HelpSpec) -> dict[str, str]:
    """option name -> default text from the run config; a train field left to the recipe shows the recipe's
    value ("5, from recipe tuned")."""
    none = COMMON_NONE | dict(spec.none)
    if spec.model is None:
        return none
    cfg = spec.model()
    filled = cfg.train.filled() if hasattr(cfg, "train") else None
    out: dict[str, str] = {k: v for k, v in none.items() if k not in spec.flags}
    for opt, dotted in spec.flags.items():
        if opt in spec.none:
            out[opt] = spec.none[opt]
            continue
        value = _field(cfg, dotted)
        if value is None and filled is not None and dotted.startswith("train."):
            from_recipe = getattr(filled, dotted.split(".", 1)[1], None)
            if from_recipe is not None:
                out[opt] = f"{format_default(from_recipe)}, from recipe {cfg.train.recipe}"
                continue
        text = format_default(value)
        if text is not None or opt in none:
            out[opt] = text if text is not None else none[opt]
    return out


def metavar(param) -> str:
    """A readable metavar: N for integers, X for numbers, PATH, TEXT; arguments by their name."""
    if param.param_type_name == "argument":
        return (param.name or "value").upper() + ("..." if param.nargs == -1 else "")
    if getattr(param, "is_flag", False):
        return ""
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(map(str, desc.choices))
    ann = desc.annotation
    if desc.is_list:
        ann = (get_args(ann) or (str,))[0]
    names = {int: "N", float: "X", Path: "PATH", bool: ""}
    return names.get(ann, "TEXT") if isinstance(ann, type) else "TEXT"


def _usage(arg) -> str:
    """CHECKPOINT, IMAGES... (required) or [KEY=VALUE]... (optional) on the usage line."""
    name = arg.metavar.removesuffix("...")
    name = name if arg.required else f"[{name}]"
    return name + ("..." if arg.nargs != 1 else "")


def _bool_text(param, value: str) -> str:
    on = value.lower() in ("true", "1", "yes")
    opts = param.opts if on or not param.secondary_opts else param.secondary_opts
    return opts[0]


def polish(command, markup: bool = True):
    """Metavars, config defaults and examples on every command of a typer/click tree (in place; returns it).
    `markup`: the help is shown through rich markup, so its brackets are escaped (Markdown reads `\\[` as `[`
    too)."""
    import typer
    from rich.markup import escape
    spec: HelpSpec | None = getattr(command.callback, "vislab_help", None) if command.callback else None
    defaults = config_defaults(spec) if spec else {}
    for p in command.params:
        if p.metavar is None:
            p.metavar = metavar(p)
        if p.param_type_name == "argument":  # the metavar names it: no Python type (<list[str]>), no {NAME}
            p.display_type_rich = lambda ctx: None
            p.get_usage_pieces = lambda ctx, p=p: [_usage(p)]
        if p.param_type_name == "option" and p.name in defaults and "[default:" not in (p.help or ""):
            text = defaults[p.name]
            if p.is_flag and p.secondary_opts and text.lower() in ("true", "false"):
                text = _bool_text(p, text)
            p.help = f"{(p.help or '').rstrip()} [default: {text}]"
        if markup and p.help:
            p.help = escape(p.help)
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None:
        help_option.metavar = ""
    if command.help:  # listed by its whole first sentence, never cut mid-sentence
        command.short_help = command.help.strip().split("\n\n")[0].replace("\n", " ")
        if markup:
            command.help, command.short_help = escape(command.help), escape(command.short_help)
    if spec and spec.examples:
        examples = "Examples:\n\n" + "\n\n".join(spec.examples)
        command.epilog = examples + (f"\n\n{command.epilog}" if command.epilog else "")
    for sub in getattr(command, "commands", {}).values():
        polish(sub, markup)
    return command
