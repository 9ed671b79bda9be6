"""The root command line: `vislab --version`, `vislab demo`, and one sub-app per lab:
`vislab fashion ...`, `vislab cifar ...`, `vislab siamese ...`, `vislab vae ...`.

Every config field can be set as a trailing `section.field=value` override; the common ones
also have flags. Precedence: defaults < --config YAML < flags < overrides.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from vislab import __version__
from vislab.labs.cifar.cli import app as cifar_app
from vislab.labs.fashion.cli import app as fashion_app
from vislab.labs.fashion.cli import demo_cmd
from vislab.labs.siamese.cli import app as siamese_app
from vislab.labs.vae.cli import app as vae_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(fashion_app, name="fashion")
app.add_typer(cifar_app, name="cifar")
app.add_typer(siamese_app, name="siamese")
app.add_typer(vae_app, name="vae")
app.command("demo")(demo_cmd)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vislab {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                         help="Print the version and exit.")] = None):
    """vislab: train, evaluate, compare and serve image models."""


def main():
    app()


if __name__ == "__main__":
    main()
