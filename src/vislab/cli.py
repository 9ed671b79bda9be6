"""vislab: train, evaluate, compare and serve image models from one command line.

Each lab is a sub-command with its own train, evaluate and more: run vislab LAB --help to see them.
Every config field can be set as a trailing section.field=value override, and the common ones also have
flags. Precedence: defaults, then the --config YAML, then flags, then overrides.
"""
from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from vislab import __version__
from vislab.core.clihelp import documented, polish
from vislab.labs.cifar.cli import app as cifar_app
from vislab.labs.fashion.cli import app as fashion_app
from vislab.labs.fashion.cli import demo_cmd
from vislab.labs.siamese.cli import app as siamese_app
from vislab.labs.vae.cli import app as vae_app
from vislab.product.cli import export_cmd, serve_cmd

EPILOG = ("Exit codes: 0 done, 1 bad input, 2 bad usage, 3 unexpected error (--debug shows its traceback), "
          "130 interrupted.")



class VislabGroup(TyperGroup):
    """The root command, polished (`polish`: config defaults, metavars, examples) once its whole tree exists,
    so that the terminal, the tests and the docs all see the same help."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        polish(self)


app = typer.Typer(cls=VislabGroup, add_completion=False, no_args_is_help=True, help=__doc__, epilog=EPILOG,
                  pretty_exceptions_show_locals=False)
app.add_typer(fashion_app, name="fashion")
app.add_typer(cifar_app, name="cifar")
app.add_typer(siamese_app, name="siamese")
app.add_typer(vae_app, name="vae")
app.command("demo")(demo_cmd)
app.command("serve")(serve_cmd)
app.command("export")(export_cmd)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vislab {__version__}")
        raise typer.Exit()


@app.callback()
@documented(None, None, "vislab demo", "vislab --debug fashion train -c fashion/default")
def root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                         help="Print the version and exit.")] = None,
         debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error (same as "
                                             "VISLAB_DEBUG=1).")] = False):
    """vislab: train, evaluate, compare and serve image models."""
    if debug:
        os.environ["VISLAB_DEBUG"] = "1"  # also seen by worker and DDP processes


def command():
    """The command tree of `vislab` (typer's click tree), help polished."""
    return typer.main.get_command(app)


def main():
    app(prog_name="vislab")


if __name__ == "__main__":
    main()
