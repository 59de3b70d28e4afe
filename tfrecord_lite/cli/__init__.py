"""The command line (``python -m tfrecord_lite``, ``tfrecord-lite``): one module per
command group, each registering its own subcommands, under ``main``."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
