"""The errors vislab raises for input a user can fix, in one module that imports nothing heavy, so that
the command line can catch them (and answer in well under a second) before torch is ever loaded.

Exit codes of `vislab` (docs: quick start):

| code | meaning |
|---|---|
| 0 | done |
| 1 | bad input: a config value, a data file, an image, a checkpoint, a NaN loss (one line says what) |
| 2 | bad usage: an unknown flag or command, a value outside a flag's choices |
| 3 | an unexpected error (a bug, or input vislab does not check yet): one line; `--debug` shows the traceback |
| 130 | interrupted (Ctrl-C); a training run keeps its last finished epoch for `--resume` |
"""
from __future__ import annotations

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class VislabError(Exception):
    """Input the user can fix; the message says what and how. The CLI prints it as one line."""
    exit_code = EXIT_INPUT


class UsageError(VislabError, ValueError):
    """A flag or argument that is not one of the allowed values."""
    exit_code = EXIT_USAGE


class ConfigError(VislabError, ValueError):
    """A config that does not validate, explained one problem at a time."""


class DataError(VislabError, ValueError):
    """Bad input data, with a message that says what to fix."""


class ImageError(DataError):
    """An image file that is missing, empty, corrupt or too large."""


class CheckpointError(VislabError, ValueError):
    """A checkpoint that does not exist, is not vislab's, belongs to another lab or does not fit."""


class PretrainedUnavailable(VislabError, RuntimeError):
    """Pretrained weights that cannot be found offline nor downloaded."""


class NonFiniteLoss(VislabError, RuntimeError):
    """A NaN or infinite training loss; the checkpoints of the last finished epoch are kept."""
